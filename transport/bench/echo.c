/*
 * echo.c: the C peer for the transport echo benchmark (our own code).
 *
 * A UDP echo server that moves datagrams in batches with recvmmsg and
 * sendmmsg, the way a tuned C data plane does on the kernel stack. Each
 * datagram must start like an E3 header (version 1, at least 56 bytes); the
 * server turns its kind into "reply" (2) and sends it back to its source,
 * the same per-message work the Go server in udpecho does.
 *
 * Build: gcc -O2 -Wall -o echo echo.c
 * Run:   ./echo 127.0.0.1 9000 [batch [socket-buffer-bytes]]
 * It serves until SIGINT or SIGTERM, then prints how many datagrams it
 * echoed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BATCH 1024
#define BUF_SIZE 2048
#define HEADER_SIZE 56
#define VERSION 1
#define KIND_REPLY 2

static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
	if (argc < 3) {
		fprintf(stderr, "usage: %s ADDR PORT [BATCH [SOCKET_BUFFER]]\n", argv[0]);
		return 2;
	}
	int batch = argc > 3 ? atoi(argv[3]) : 64;
	if (batch < 1 || batch > MAX_BATCH) {
		fprintf(stderr, "echo: batch %d: want 1..%d\n", batch, MAX_BATCH);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) { perror("echo: socket"); return 1; }
	int size = argc > 4 ? atoi(argv[4]) : 4 << 20;
	/* Force past rmem_max when root, as the Go side does; else capped. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) {
		fprintf(stderr, "echo: bad address %s\n", argv[1]);
		return 2;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) { perror("echo: bind"); return 1; }

	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: a signal ends recvmmsg */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	static char bufs[MAX_BATCH][BUF_SIZE];
	static struct mmsghdr msgs[MAX_BATCH];
	static struct iovec iovs[MAX_BATCH];
	static struct sockaddr_in names[MAX_BATCH];
	unsigned long long echoed = 0;

	while (!stop) {
		for (int i = 0; i < batch; i++) {
			iovs[i].iov_base = bufs[i];
			iovs[i].iov_len = BUF_SIZE;
			msgs[i].msg_hdr = (struct msghdr){
				.msg_name = &names[i], .msg_namelen = sizeof names[i],
				.msg_iov = &iovs[i], .msg_iovlen = 1,
			};
		}
		int n = recvmmsg(fd, msgs, batch, MSG_WAITFORONE, NULL);
		if (n < 0) {
			if (errno == EINTR) continue;
			perror("echo: recvmmsg");
			return 1;
		}
		int out = 0; /* compact the valid ones to the front */
		for (int i = 0; i < n; i++) {
			unsigned char *b = (unsigned char *)bufs[i];
			if (msgs[i].msg_len < HEADER_SIZE || b[0] != VERSION) continue;
			b[1] = KIND_REPLY;
			iovs[i].iov_len = msgs[i].msg_len;
			if (out != i) {
				msgs[out] = msgs[i];
			}
			out++;
		}
		for (int sent = 0; sent < out;) {
			int m = sendmmsg(fd, msgs + sent, out - sent, 0);
			if (m < 0) {
				if (errno == EINTR) continue;
				perror("echo: sendmmsg");
				break;
			}
			sent += m;
		}
		echoed += out;
	}
	printf("echoed %llu\n", echoed);
	return 0;
}

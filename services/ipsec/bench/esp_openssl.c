/*
 * esp_openssl: the OpenSSL peer of the Go ipsec service (our own code).
 *
 * It does the per-packet work of ESP tunnel encapsulation (RFC 4303) with
 * OpenSSL 3 EVP: build the outer IPv4 header and the ESP header, take an IV
 * from a batch of RAND_bytes, copy the inner packet, add the RFC 4303
 * padding and trailer, encrypt with EVP AES-128-CBC (RFC 3602) and append
 * HMAC-SHA1-96 (RFC 2404). The cipher and MAC contexts are keyed once and
 * only re-initialised per packet, the cheapest way OpenSSL offers.
 *
 *   esp_openssl bench [SIZE [SECONDS]]
 *       encapsulate SIZE-byte packets on one core for SECONDS and print
 *       packets/s, once with EVP_MAC and once with the legacy HMAC_CTX.
 *   esp_openssl seal ENCKEY AUTHKEY IV SPI SEQ
 *       read an inner packet on stdin, write the ESP payload (SPI through
 *       ICV) to stdout: the interoperability check of the Go tests.
 *
 * Build: cc -O2 -o esp_openssl esp_openssl.c -lcrypto
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IV_LEN 16
#define ICV_LEN 12
#define IV_BATCH (256 * IV_LEN)

struct esp {
	EVP_CIPHER_CTX *cipher;
	EVP_MAC_CTX *mac;   /* used when legacy == 0 */
	HMAC_CTX *hmac;     /* used when legacy == 1 */
	int legacy;
	unsigned char rnd[IV_BATCH];
	int rnd_at;
};

static void die(const char *what) {
	fprintf(stderr, "esp_openssl: %s failed\n", what);
	exit(1);
}

static void esp_init(struct esp *e, const unsigned char *ek, const unsigned char *ak, int legacy) {
	memset(e, 0, sizeof *e);
	e->legacy = legacy;
	e->rnd_at = IV_BATCH;
	e->cipher = EVP_CIPHER_CTX_new();
	if (!e->cipher || !EVP_EncryptInit_ex(e->cipher, EVP_aes_128_cbc(), NULL, ek, NULL))
		die("EVP_EncryptInit_ex");
	EVP_CIPHER_CTX_set_padding(e->cipher, 0);
	if (legacy) {
		e->hmac = HMAC_CTX_new();
		if (!e->hmac || !HMAC_Init_ex(e->hmac, ak, 20, EVP_sha1(), NULL))
			die("HMAC_Init_ex");
	} else {
		EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		if (!mac)
			die("EVP_MAC_fetch");
		e->mac = EVP_MAC_CTX_new(mac);
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0),
			OSSL_PARAM_construct_end(),
		};
		if (!e->mac || !EVP_MAC_init(e->mac, ak, 20, params))
			die("EVP_MAC_init");
	}
}

static uint16_t csum(const unsigned char *b, int n) {
	uint32_t s = 0;
	for (int i = 0; i + 1 < n; i += 2)
		s += (uint32_t)b[i] << 8 | b[i + 1];
	while (s >> 16)
		s = (s >> 16) + (s & 0xffff);
	return (uint16_t)~s;
}

/* seal writes the ESP tunnel packet for inner (n bytes) to out and returns
 * its length. A NULL iv takes the next one from the random batch. */
static int seal(struct esp *e, unsigned char *out, const unsigned char *inner, int n,
                uint32_t spi, uint32_t seq, const unsigned char *iv) {
	int pl = (n + 2 + 15) & ~15, total = 20 + 8 + IV_LEN + pl + ICV_LEN, outl;
	unsigned char *ip = out, *esp = out + 20, *body = esp + 8 + IV_LEN;
	memset(ip, 0, 20);
	ip[0] = 0x45; ip[1] = inner[1];
	ip[2] = total >> 8; ip[3] = total;
	ip[4] = seq >> 8; ip[5] = seq;
	ip[6] = inner[6] & 0x40; ip[8] = 64; ip[9] = 50;
	ip[12] = 192; ip[13] = 0; ip[14] = 2; ip[15] = 1;
	ip[16] = 198; ip[17] = 51; ip[18] = 100; ip[19] = 1;
	uint16_t c = csum(ip, 20);
	ip[10] = c >> 8; ip[11] = c;
	esp[0] = spi >> 24; esp[1] = spi >> 16; esp[2] = spi >> 8; esp[3] = spi;
	esp[4] = seq >> 24; esp[5] = seq >> 16; esp[6] = seq >> 8; esp[7] = seq;
	if (!iv) {
		if (e->rnd_at + IV_LEN > IV_BATCH) {
			if (RAND_bytes(e->rnd, IV_BATCH) != 1)
				die("RAND_bytes");
			e->rnd_at = 0;
		}
		iv = e->rnd + e->rnd_at;
		e->rnd_at += IV_LEN;
	}
	memcpy(esp + 8, iv, IV_LEN);
	memcpy(body, inner, n);
	int pad = pl - n - 2;
	for (int i = 0; i < pad; i++)
		body[n + i] = i + 1;
	body[pl - 2] = pad;
	body[pl - 1] = 4;
	if (!EVP_EncryptInit_ex(e->cipher, NULL, NULL, NULL, esp + 8) ||
	    !EVP_EncryptUpdate(e->cipher, body, &outl, body, pl) || outl != pl)
		die("EVP_EncryptUpdate");
	unsigned char md[EVP_MAX_MD_SIZE];
	if (e->legacy) {
		unsigned int mdl;
		if (!HMAC_Init_ex(e->hmac, NULL, 0, NULL, NULL) ||
		    !HMAC_Update(e->hmac, esp, 8 + IV_LEN + pl) || !HMAC_Final(e->hmac, md, &mdl))
			die("HMAC");
	} else {
		size_t mdl;
		if (!EVP_MAC_init(e->mac, NULL, 0, NULL) ||
		    !EVP_MAC_update(e->mac, esp, 8 + IV_LEN + pl) ||
		    !EVP_MAC_final(e->mac, md, &mdl, sizeof md))
			die("EVP_MAC");
	}
	memcpy(body + pl, md, ICV_LEN);
	return total;
}

static double clock_s(clockid_t id) {
	struct timespec ts;
	clock_gettime(id, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int unhex(const char *s, unsigned char *out, int n) {
	if ((int)strlen(s) != 2 * n)
		return 0;
	for (int i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return 0;
		out[i] = v;
	}
	return 1;
}

struct rate {
	double wall_pps, cpu_pps;
};

/* bench returns packets per second of wall time and of the thread's CPU
 * time; on a shared machine the second is the figure to compare. */
static struct rate bench(int size, double secs, int legacy) {
	unsigned char ek[16], ak[20], inner[65536], out[65536 + 128];
	for (int i = 0; i < 16; i++) ek[i] = i;
	for (int i = 0; i < 20; i++) ak[i] = 0x40 + i;
	for (int i = 0; i < size; i++) inner[i] = i * 7;
	inner[0] = 0x45;
	struct esp e;
	esp_init(&e, ek, ak, legacy);
	uint32_t seq = 0;
	/* warm up */
	for (int i = 0; i < 10000; i++)
		seal(&e, out, inner, size, 0x1000, ++seq, NULL);
	long n = 0;
	double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID), t;
	do {
		for (int i = 0; i < 4096; i++)
			seal(&e, out, inner, size, 0x1000, ++seq, NULL);
		n += 4096;
		t = clock_s(CLOCK_MONOTONIC);
	} while (t - t0 < secs);
	struct rate r = {n / (t - t0), n / (clock_s(CLOCK_THREAD_CPUTIME_ID) - c0)};
	return r;
}

int main(int argc, char **argv) {
	if (argc >= 2 && strcmp(argv[1], "bench") == 0) {
		int size = argc > 2 ? atoi(argv[2]) : 512;
		double secs = argc > 3 ? atof(argv[3]) : 2;
		if (size < 20 || size > 65000) {
			fprintf(stderr, "esp_openssl: size %d outside [20, 65000]\n", size);
			return 2;
		}
		struct rate evp = bench(size, secs, 0), legacy = bench(size, secs, 1);
		struct rate best = evp.cpu_pps > legacy.cpu_pps ? evp : legacy;
		printf("openssl %s size=%d evp_mac: wall_pps=%.0f cpu_pps=%.0f hmac_ctx: wall_pps=%.0f cpu_pps=%.0f "
		       "best: wall_ns=%.1f cpu_ns=%.1f\n",
		       OpenSSL_version(OPENSSL_VERSION_STRING), size, evp.wall_pps, evp.cpu_pps,
		       legacy.wall_pps, legacy.cpu_pps, 1e9 / best.wall_pps, 1e9 / best.cpu_pps);
		return 0;
	}
	if (argc == 7 && strcmp(argv[1], "seal") == 0) {
		unsigned char ek[16], ak[20], iv[16], inner[65536], out[65536 + 128];
		if (!unhex(argv[2], ek, 16) || !unhex(argv[3], ak, 20) || !unhex(argv[4], iv, 16)) {
			fprintf(stderr, "esp_openssl: keys must be 32 and 40 hex digits, the IV 32\n");
			return 2;
		}
		uint32_t spi = strtoul(argv[5], NULL, 0), seq = strtoul(argv[6], NULL, 0);
		size_t n = fread(inner, 1, sizeof inner - 1, stdin);
		if (n < 20 || n > 65000) {
			fprintf(stderr, "esp_openssl: inner packet of %zu bytes\n", n);
			return 2;
		}
		struct esp e;
		esp_init(&e, ek, ak, 0);
		int total = seal(&e, out, inner, (int)n, spi, seq, iv);
		fwrite(out + 20, 1, total - 20, stdout);
		return 0;
	}
	fprintf(stderr, "usage: esp_openssl bench [SIZE [SECONDS]] | seal ENCKEY AUTHKEY IV SPI SEQ < inner\n");
	return 2;
}

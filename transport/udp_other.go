//go:build !linux

package transport

import (
	"errors"
	"syscall"
)

// haveMmsg is false: outside Linux every UDPConn uses the x/net path.
const haveMmsg = false

type mmsgScratch struct{}

func (s *mmsgScratch) init(c *UDPConn, read bool) {}

func (s *mmsgScratch) read(ms []Message) (int, error) {
	return 0, errors.New("transport: recvmmsg path is Linux only")
}

func (s *mmsgScratch) write(ms []Message) (int, error) {
	return 0, errors.New("transport: sendmmsg path is Linux only")
}

func setSocketBuffers(raw syscall.RawConn, size int) {}

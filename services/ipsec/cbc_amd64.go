//go:build amd64 && !purego

package ipsec

import "golang.org/x/sys/cpu"

// haveAESNI selects the assembly CBC loops.
var haveAESNI = cpu.X86.HasAES && cpu.X86.HasSSE2

// cbcEncryptAsm encrypts blocks 16-byte blocks of buf in place in CBC mode
// with the schedule xk (176 bytes) and the IV iv.
//
//go:noescape
func cbcEncryptAsm(xk *byte, iv *byte, buf *byte, blocks int)

// cbcDecryptAsm decrypts blocks 16-byte blocks from src to dst in CBC mode
// with the inverse schedule xk. dst and src may be the same buffer.
//
//go:noescape
func cbcDecryptAsm(xk *byte, iv *byte, dst *byte, src *byte, blocks int)

//go:build !amd64 || purego

package ipsec

// haveAESNI is false off amd64: crypto/cipher's CBC modes are used.
const haveAESNI = false

func cbcEncryptAsm(xk *byte, iv *byte, buf *byte, blocks int) {
	panic("ipsec: cbcEncryptAsm called without AES-NI")
}

func cbcDecryptAsm(xk *byte, iv *byte, dst *byte, src *byte, blocks int) {
	panic("ipsec: cbcDecryptAsm called without AES-NI")
}

//go:build amd64 && !purego

#include "textflag.h"

// AES-128-CBC with AES-NI. The eleven round keys live in X1-X11 for the
// whole call. Encryption is serial by nature (each block chains on the
// previous ciphertext), so its loop is one AESENC chain per block with the
// plaintext XOR round key 0 computed off the chain. Decryption is parallel:
// four blocks are in flight at once to hide the AESDEC latency.

// func cbcEncryptAsm(xk *byte, iv *byte, buf *byte, blocks int)
TEXT ·cbcEncryptAsm(SB), NOSPLIT, $0-32
	MOVQ xk+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ buf+16(FP), SI
	MOVQ blocks+24(FP), CX
	MOVUPS 0(AX), X1
	MOVUPS 16(AX), X2
	MOVUPS 32(AX), X3
	MOVUPS 48(AX), X4
	MOVUPS 64(AX), X5
	MOVUPS 80(AX), X6
	MOVUPS 96(AX), X7
	MOVUPS 112(AX), X8
	MOVUPS 128(AX), X9
	MOVUPS 144(AX), X10
	MOVUPS 160(AX), X11
	MOVUPS (BX), X0
	TESTQ CX, CX
	JZ encdone

encloop:
	MOVUPS (SI), X12
	PXOR X1, X12
	PXOR X12, X0
	AESENC X2, X0
	AESENC X3, X0
	AESENC X4, X0
	AESENC X5, X0
	AESENC X6, X0
	AESENC X7, X0
	AESENC X8, X0
	AESENC X9, X0
	AESENC X10, X0
	AESENCLAST X11, X0
	MOVUPS X0, (SI)
	ADDQ $16, SI
	DECQ CX
	JNZ encloop

encdone:
	RET

// func cbcDecryptAsm(xk *byte, iv *byte, dst *byte, src *byte, blocks int)
TEXT ·cbcDecryptAsm(SB), NOSPLIT, $0-40
	MOVQ xk+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ blocks+32(FP), CX
	MOVUPS 0(AX), X1
	MOVUPS 16(AX), X2
	MOVUPS 32(AX), X3
	MOVUPS 48(AX), X4
	MOVUPS 64(AX), X5
	MOVUPS 80(AX), X6
	MOVUPS 96(AX), X7
	MOVUPS 112(AX), X8
	MOVUPS 128(AX), X9
	MOVUPS 144(AX), X10
	MOVUPS 160(AX), X11
	MOVUPS (BX), X15

dec4:
	CMPQ CX, $4
	JB dec1
	MOVUPS 0(SI), X0
	MOVUPS 16(SI), X12
	MOVUPS 32(SI), X13
	MOVUPS 48(SI), X14
	PXOR X1, X0
	PXOR X1, X12
	PXOR X1, X13
	PXOR X1, X14
	AESDEC X2, X0
	AESDEC X2, X12
	AESDEC X2, X13
	AESDEC X2, X14
	AESDEC X3, X0
	AESDEC X3, X12
	AESDEC X3, X13
	AESDEC X3, X14
	AESDEC X4, X0
	AESDEC X4, X12
	AESDEC X4, X13
	AESDEC X4, X14
	AESDEC X5, X0
	AESDEC X5, X12
	AESDEC X5, X13
	AESDEC X5, X14
	AESDEC X6, X0
	AESDEC X6, X12
	AESDEC X6, X13
	AESDEC X6, X14
	AESDEC X7, X0
	AESDEC X7, X12
	AESDEC X7, X13
	AESDEC X7, X14
	AESDEC X8, X0
	AESDEC X8, X12
	AESDEC X8, X13
	AESDEC X8, X14
	AESDEC X9, X0
	AESDEC X9, X12
	AESDEC X9, X13
	AESDEC X9, X14
	AESDEC X10, X0
	AESDEC X10, X12
	AESDEC X10, X13
	AESDEC X10, X14
	AESDECLAST X11, X0
	AESDECLAST X11, X12
	AESDECLAST X11, X13
	AESDECLAST X11, X14
	// Chain: every load of src happens before the stores to dst, so
	// decrypting in place is safe.
	PXOR X15, X0
	MOVUPS 0(SI), X15
	PXOR X15, X12
	MOVUPS 16(SI), X15
	PXOR X15, X13
	MOVUPS 32(SI), X15
	PXOR X15, X14
	MOVUPS 48(SI), X15
	MOVUPS X0, 0(DI)
	MOVUPS X12, 16(DI)
	MOVUPS X13, 32(DI)
	MOVUPS X14, 48(DI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $4, CX
	JMP dec4

dec1:
	TESTQ CX, CX
	JZ decdone
	MOVUPS (SI), X0
	MOVUPS (SI), X12
	PXOR X1, X0
	AESDEC X2, X0
	AESDEC X3, X0
	AESDEC X4, X0
	AESDEC X5, X0
	AESDEC X6, X0
	AESDEC X7, X0
	AESDEC X8, X0
	AESDEC X9, X0
	AESDEC X10, X0
	AESDECLAST X11, X0
	PXOR X15, X0
	MOVO X12, X15
	MOVUPS X0, (DI)
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ CX
	JMP dec1

decdone:
	RET

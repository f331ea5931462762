#include "textflag.h"

// func aboveAVX2(out []int32, x []float32, add, thr float32) int
// Writes to out, in order, every j < len(x) (a multiple of 8) where
// !(x[j]+add < thr): at or above thr, or NaN; returns how many.
TEXT ·aboveAVX2(SB), NOSPLIT, $0-64
	MOVQ         out_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	VBROADCASTSS add+48(FP), Y1
	VBROADCASTSS thr+52(FP), Y2
	XORQ         AX, AX
	XORQ         DX, DX

group:
	CMPQ      AX, CX
	JGE       done
	VMOVUPS   (SI)(AX*4), Y0
	VADDPS    Y1, Y0, Y0
	VCMPPS    $0x15, Y2, Y0, Y3
	VMOVMSKPS Y3, BX
	TESTL     BX, BX
	JZ        next

bit:
	BSFL BX, R8
	LEAQ (AX)(R8*1), R9
	MOVL R9, (DI)(DX*4)
	INCQ DX
	LEAL -1(BX), R10
	ANDL R10, BX
	JNZ  bit

next:
	ADDQ $8, AX
	JMP  group

done:
	VZEROUPPER
	MOVQ DX, ret+56(FP)
	RET

#include "textflag.h"

// func aboveAVX2(out []int32, x []float32, add, thr float32, lanes *[256][8]int32) int
// Writes to out, in order, every j < len(x) (a multiple of 8) where
// !(x[j]+add < thr): at or above thr, or NaN; returns how many.
//
// Thirty-two items are compared at a time and skipped on one branch when
// none passes, which is how most blocks end once the top-k fills up. A
// group of eight is then packed without a branch: its comparison mask
// picks the row of lanes that lists the set lanes first; the row, plus
// the group's first index, is stored whole at out[n], and n advances by
// the mask's population. A store never passes out[j+8] for the group at
// j, as n <= j.
TEXT ·aboveAVX2(SB), NOSPLIT, $0-72
	MOVQ         out_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	VBROADCASTSS add+48(FP), Y1
	VBROADCASTSS thr+52(FP), Y2
	MOVQ         lanes+56(FP), R11
	XORQ         AX, AX
	XORQ         DX, DX
	MOVQ         CX, R10
	ANDQ         $-32, R10          // the items compared 32 at a time

// PACK stores the set lanes of mask reg, as indexes from AX+off.
#define PACK(mask, off) \
	MOVQ    mask, R9 \
	SHLQ    $5, R9 \
	VMOVDQU (R11)(R9*1), Y4 \
	LEAQ    off(AX), R9 \
	VMOVQ   R9, X5 \
	VPBROADCASTD X5, Y5 \
	VPADDD  Y5, Y4, Y4 \
	VMOVDQU Y4, (DI)(DX*4) \
	POPCNTL mask, mask \
	ADDQ    mask, DX

// CMP8 sets mask reg to the passing lanes of the eight items at AX+off.
#define CMP8(off, ymm, mask) \
	VMOVUPS   (off*4)(SI)(AX*4), ymm \
	VADDPS    Y1, ymm, ymm \
	VCMPPS    $0x15, Y2, ymm, ymm \
	VMOVMSKPS ymm, mask

quad:
	CMPQ  AX, R10
	JGE   tail
	CMP8(0, Y0, BX)
	CMP8(8, Y3, R12)
	CMP8(16, Y7, R13)
	CMP8(24, Y8, R14)
	MOVQ  BX, R15
	ORQ   R12, R15
	ORQ   R13, R15
	ORQ   R14, R15
	JZ    nextquad
	PACK(BX, 0)
	PACK(R12, 8)
	PACK(R13, 16)
	PACK(R14, 24)

nextquad:
	ADDQ $32, AX
	JMP  quad

tail:
	CMPQ AX, CX
	JGE  done
	CMP8(0, Y0, BX)
	PACK(BX, 0)
	ADDQ $8, AX
	JMP  tail

done:
	VZEROUPPER
	MOVQ DX, ret+64(FP)
	RET

#include "textflag.h"

// ROW adds to acc the products of one row's chunk at addr (into t,
// whose full register is ft) with the query chunk q: the weights take
// q's signs, multiply |q| (qa) in pairs, and the pairs are summed to int32
// (multiplied by ones).
#define ROW(addr, q, qa, ones, t, ft, acc) \
	VMOVDQU    addr, t;    \
	VPSIGNB    q, t, t;    \
	VPMADDUBSW t, qa, t;   \
	VPMADDWD   ones, t, t; \
	VPADDD     ft, acc, acc

// ROWS8 is ROW for the eight rows of a group (rows 0-3 from SI, 4-7 from
// R13; R8 is a row, R12 three), with temporaries t3-t6 (Y3-Y6 or X3-X6).
#define ROWS8(q, qa, ones, t3, t4, t5, t6) \
	ROW((SI), q, qa, ones, t3, Y3, Y8); \
	ROW((SI)(R8*1), q, qa, ones, t4, Y4, Y9); \
	ROW((SI)(R8*2), q, qa, ones, t5, Y5, Y10); \
	ROW((SI)(R12*1), q, qa, ones, t6, Y6, Y11); \
	ROW((R13), q, qa, ones, t3, Y3, Y12); \
	ROW((R13)(R8*1), q, qa, ones, t4, Y4, Y13); \
	ROW((R13)(R8*2), q, qa, ones, t5, Y5, Y14); \
	ROW((R13)(R12*1), q, qa, ones, t6, Y6, Y15)

// func scoreRowsAVX2(dst []float32, w []int8, q []int8, scale, bias []float32, qscale float32)
// Writes the logit of each of the len(dst) (a multiple of 8) int8 rows
// of w (len(q) weights each, a multiple of 16, none -128) against the
// int8 query q: float32(dot) * (scale[j] * qscale) + bias[j] (two
// roundings, no fused multiply-add), eight rows at a time, whose eight
// sums share one horizontal reduction and are scaled and stored together.
// 32 products per instruction: each weight takes the sign of its query
// byte (VPSIGNB) and multiplies |q| (VPMADDUBSW); no pair sum reaches the
// int16 limit (2 x 127 x 127 < 32767), so the sums are exact.
TEXT ·scoreRowsAVX2(SB), NOSPLIT, $0-124
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	SHRQ         $3, CX                // groups of 8 rows
	MOVQ         w_base+24(FP), SI
	MOVQ         q_base+48(FP), DX
	MOVQ         q_len+56(FP), R8      // dim: bytes per row
	MOVQ         scale_base+72(FP), AX
	MOVQ         bias_base+96(FP), BX
	VBROADCASTSS qscale+120(FP), Y7
	LEAQ         (R8)(R8*2), R12       // 3 rows
	MOVQ         R8, R11
	SHRQ         $5, R11               // 32-dim chunks per row
	MOVQ         R8, R14
	ANDQ         $16, R14              // 16 when a half chunk ends the row
	VPCMPEQW     Y2, Y2, Y2
	VPSRLW       $15, Y2, Y2           // int16 ones

sgroup:
	TESTQ CX, CX
	JZ    sdone
	LEAQ  (SI)(R8*4), R13             // row 4 of the group
	MOVQ  DX, R9
	MOVQ  R11, R10
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	VPXOR Y12, Y12, Y12
	VPXOR Y13, Y13, Y13
	VPXOR Y14, Y14, Y14
	VPXOR Y15, Y15, Y15
	TESTQ R10, R10
	JZ    shalf

schunk:
	VMOVDQU    (R9), Y0
	VPABSB     Y0, Y1
	ROWS8(Y0, Y1, Y2, Y3, Y4, Y5, Y6)
	ADDQ       $32, SI
	ADDQ       $32, R13
	ADDQ       $32, R9
	DECQ       R10
	JNZ        schunk

shalf:
	TESTQ      R14, R14
	JZ         sreduce
	VMOVDQU    (R9), X0
	VPABSB     X0, X1
	ROWS8(X0, X1, X2, X3, X4, X5, X6)
	ADDQ       $16, SI

sreduce:
	VPHADDD    Y9, Y8, Y8
	VPHADDD    Y11, Y10, Y10
	VPHADDD    Y13, Y12, Y12
	VPHADDD    Y15, Y14, Y14
	VPHADDD    Y10, Y8, Y8
	VPHADDD    Y14, Y12, Y12
	VPERM2I128 $0x20, Y12, Y8, Y3
	VPERM2I128 $0x31, Y12, Y8, Y4
	VPADDD     Y4, Y3, Y3

	VCVTDQ2PS Y3, Y3
	VMOVUPS   (AX), Y4
	VMULPS    Y7, Y4, Y4
	VMULPS    Y4, Y3, Y3
	VADDPS    (BX), Y3, Y3
	VMOVUPS   Y3, (DI)

	LEAQ (SI)(R12*2), SI              // the next group: 7 rows on (one was read)
	ADDQ R8, SI
	ADDQ $32, DI
	ADDQ $32, AX
	ADDQ $32, BX
	DECQ CX
	JMP  sgroup

sdone:
	VZEROUPPER
	RET

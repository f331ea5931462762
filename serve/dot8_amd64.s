#include "textflag.h"

// func scoreRowsAVX2(dst []float32, w []int8, q []int16, scale, bias []float32, qscale float32)
// Writes the logit of each of the len(dst) (a multiple of 8) int8 rows
// of w (len(q) weights each, a multiple of 16) against the query q:
// float32(dot) * (scale[j] * qscale) + bias[j] (two roundings, no fused
// multiply-add), eight rows at a time, whose eight sums share one
// horizontal reduction and are scaled and stored together.
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
	SHRQ         $4, R11               // 16-dim chunks per row

sgroup:
	TESTQ CX, CX
	JZ    sdone
	LEAQ  (SI)(R8*4), R13             // row 4 of the group
	MOVQ  DX, R9
	MOVQ  R11, R10

	// The first chunk sets the accumulators; the others add to them.
	VMOVDQU   (R9), Y0
	VPMOVSXBW (SI), Y8
	VPMADDWD  Y0, Y8, Y8
	VPMOVSXBW (SI)(R8*1), Y9
	VPMADDWD  Y0, Y9, Y9
	VPMOVSXBW (SI)(R8*2), Y10
	VPMADDWD  Y0, Y10, Y10
	VPMOVSXBW (SI)(R12*1), Y11
	VPMADDWD  Y0, Y11, Y11
	VPMOVSXBW (R13), Y12
	VPMADDWD  Y0, Y12, Y12
	VPMOVSXBW (R13)(R8*1), Y13
	VPMADDWD  Y0, Y13, Y13
	VPMOVSXBW (R13)(R8*2), Y14
	VPMADDWD  Y0, Y14, Y14
	VPMOVSXBW (R13)(R12*1), Y15
	VPMADDWD  Y0, Y15, Y15
	ADDQ      $16, SI
	ADDQ      $16, R13
	ADDQ      $32, R9
	DECQ      R10
	JZ        sreduce

schunk:
	VMOVDQU   (R9), Y0
	VPMOVSXBW (SI), Y1
	VPMADDWD  Y0, Y1, Y1
	VPADDD    Y1, Y8, Y8
	VPMOVSXBW (SI)(R8*1), Y2
	VPMADDWD  Y0, Y2, Y2
	VPADDD    Y2, Y9, Y9
	VPMOVSXBW (SI)(R8*2), Y3
	VPMADDWD  Y0, Y3, Y3
	VPADDD    Y3, Y10, Y10
	VPMOVSXBW (SI)(R12*1), Y4
	VPMADDWD  Y0, Y4, Y4
	VPADDD    Y4, Y11, Y11
	VPMOVSXBW (R13), Y1
	VPMADDWD  Y0, Y1, Y1
	VPADDD    Y1, Y12, Y12
	VPMOVSXBW (R13)(R8*1), Y2
	VPMADDWD  Y0, Y2, Y2
	VPADDD    Y2, Y13, Y13
	VPMOVSXBW (R13)(R8*2), Y3
	VPMADDWD  Y0, Y3, Y3
	VPADDD    Y3, Y14, Y14
	VPMOVSXBW (R13)(R12*1), Y4
	VPMADDWD  Y0, Y4, Y4
	VPADDD    Y4, Y15, Y15
	ADDQ      $16, SI
	ADDQ      $16, R13
	ADDQ      $32, R9
	DECQ      R10
	JNZ       schunk

sreduce:
	VPHADDD    Y9, Y8, Y8
	VPHADDD    Y11, Y10, Y10
	VPHADDD    Y13, Y12, Y12
	VPHADDD    Y15, Y14, Y14
	VPHADDD    Y10, Y8, Y8
	VPHADDD    Y14, Y12, Y12
	VPERM2I128 $0x20, Y12, Y8, Y1
	VPERM2I128 $0x31, Y12, Y8, Y2
	VPADDD     Y2, Y1, Y1

	VCVTDQ2PS Y1, Y1
	VMOVUPS   (AX), Y2
	VMULPS    Y7, Y2, Y2
	VMULPS    Y2, Y1, Y1
	VADDPS    (BX), Y1, Y1
	VMOVUPS   Y1, (DI)

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

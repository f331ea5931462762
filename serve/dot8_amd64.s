#include "textflag.h"

// func dotRowsAVX2(dst []float32, w []int8, q []int16)
// For each of the len(dst) rows of len(q) int8 weights in w, writes the
// int32 dot product with q as the bits of dst[j]. len(q) is a multiple
// of 16, at least 16.
TEXT ·dotRowsAVX2(SB), NOSPLIT, $0-72
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ w_base+24(FP), SI
	MOVQ q_base+48(FP), DX
	MOVQ q_len+56(FP), R8

row:
	TESTQ CX, CX
	JZ    done
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	MOVQ  DX, R9
	MOVQ  R8, R10
	CMPQ  R10, $32
	JB    tail

pair:
	VPMOVSXBW (SI), Y2
	VPMOVSXBW 16(SI), Y3
	VPMADDWD  (R9), Y2, Y2
	VPMADDWD  32(R9), Y3, Y3
	VPADDD    Y2, Y0, Y0
	VPADDD    Y3, Y1, Y1
	ADDQ      $32, SI
	ADDQ      $64, R9
	SUBQ      $32, R10
	CMPQ      R10, $32
	JAE       pair

tail:
	TESTQ     R10, R10
	JZ        sum
	VPMOVSXBW (SI), Y2
	VPMADDWD  (R9), Y2, Y2
	VPADDD    Y2, Y0, Y0
	ADDQ      $16, SI

sum:
	VPADDD       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0x4E, X0, X1
	VPADDD       X1, X0, X0
	VPSHUFD      $0xB1, X0, X1
	VPADDD       X1, X0, X0
	VMOVD        X0, (DI)
	ADDQ         $4, DI
	DECQ         CX
	JMP          row

done:
	VZEROUPPER
	RET

#include "textflag.h"

// Elementwise float32 kernels in AVX, eight lanes per instruction. Each
// lane does the scalar code's operations in its order, each rounded to
// float32 (no fused multiply-add), so results are bit for bit those of the
// Go loops in kernels.go. len(x) is a multiple of 8 in every one.

DATA eps<>+0(SB)/4, $0x358637bd // float32(1e-6)
GLOBL eps<>(SB), RODATA|NOPTR, $4

// func addAVX(x, y []float32)
// y[i] += x[i].
TEXT ·addAVX(SB), NOSPLIT, $0-48
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	MOVQ y_base+24(FP), DI

addloop:
	CMPQ    CX, $8
	JB      adddone
	VMOVUPS (DI), Y0
	VADDPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     addloop

adddone:
	VZEROUPPER
	RET

// func decayStepAVX(w, g []float32, keep, step float32)
// w[i] = keep*w[i] - step*g[i].
TEXT ·decayStepAVX(SB), NOSPLIT, $0-56
	MOVQ         w_base+0(FP), DI
	MOVQ         w_len+8(FP), CX
	MOVQ         g_base+24(FP), SI
	VBROADCASTSS keep+48(FP), Y4
	VBROADCASTSS step+52(FP), Y5

decayloop:
	CMPQ    CX, $8
	JB      decaydone
	VMULPS  (DI), Y4, Y0
	VMULPS  (SI), Y5, Y1
	VSUBPS  Y1, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     decayloop

decaydone:
	VZEROUPPER
	RET

// func adaGradAVX(w, acc, g []float32, lr float32)
// acc[i] += g[i]*g[i]; w[i] -= lr*g[i] / (sqrt(acc[i]) + 1e-6).
TEXT ·adaGradAVX(SB), NOSPLIT, $0-76
	MOVQ         w_base+0(FP), DI
	MOVQ         w_len+8(FP), CX
	MOVQ         acc_base+24(FP), SI
	MOVQ         g_base+48(FP), DX
	VBROADCASTSS lr+72(FP), Y5
	VBROADCASTSS eps<>(SB), Y6

adaloop:
	CMPQ    CX, $8
	JB      adadone
	VMOVUPS (DX), Y0
	VMULPS  Y0, Y0, Y1
	VADDPS  (SI), Y1, Y1
	VMOVUPS Y1, (SI)
	VSQRTPS Y1, Y2
	VADDPS  Y6, Y2, Y2
	VMULPS  Y0, Y5, Y3
	VDIVPS  Y2, Y3, Y3
	VMOVUPS (DI), Y4
	VSUBPS  Y3, Y4, Y4
	VMOVUPS Y4, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	ADDQ    $32, DX
	SUBQ    $8, CX
	JMP     adaloop

adadone:
	VZEROUPPER
	RET

"""The personalizer's default step and penalty, torch-free: the ``stylesync-delta`` plugin offers
them as its options when it registers, which must not import torch (a render that never
personalizes would pay for it)."""

LAMBDA_P = 1e-4  # λ_p of L_p (sums of squares over every ΔW entry and ΔP element).
LEARNING_RATE = 1e-3  # Adam step for ΔW's MLP and ΔP (equalized-lr parameters are unit scale).

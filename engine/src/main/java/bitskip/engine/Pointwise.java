package bitskip.engine;

/**
 * The element-wise ops of {@link Backend#pointwise}: for each i &lt; n, with out, a, b the three operands
 * (each at its own offset) and s the scalar argument. Each formula is also the order of the float
 * operations: the reference computes exactly it, and every backend reproduces it bit for bit (these ops
 * have no reductions). Ops that accumulate ({@code +=}) are the backward passes, which add into gradients.
 */
public enum Pointwise {
    /** out = s. */
    FILL,
    /** out = a + b (a residual connection; accumulating when out is a). */
    ADD,
    /** out = a · s. */
    SCALE,
    /** out = a · b (a dropout mask applied). */
    MUL,
    /** out += a · b (a dropout mask's backward). */
    MUL_ADD,
    /** out = a &gt; 0 ? a : 0. */
    RELU,
    /** out += a where b &gt; 0 (a the gradient, b the ReLU's output). */
    RELU_BACKWARD,
    /** out = r · r with r = (a &gt; 0 ? a : 0). */
    RELU2,
    /** out += (a · 2) · b where b &gt; 0 (a the gradient, b the input). */
    RELU2_BACKWARD,
    /** out = (float) (1 / (1 + exp(−a))), evaluated in double. */
    SIGMOID,
    /** out += (a · b) · (1 − b) (a the gradient, b the sigmoid's output). */
    SIGMOID_BACKWARD,
    /** out += (s · 2) · (a − b): the gradient of s·Σ(a − b)² with b held constant. */
    SQUARED_ERROR_BACKWARD,
    /** out = a &gt; s/2 ? s : a &lt; −s/2 ? −s : 0 (s = alpha, the ternary weight scale; s/2 is 0.5f·s). */
    TERNARY;

    /** Whether the op reads operand a (every op but FILL). */
    public boolean readsA() {
        return this != FILL;
    }

    /** Whether the op reads operand b. */
    public boolean readsB() {
        return switch (this) {
            case ADD, MUL, MUL_ADD, RELU_BACKWARD, RELU2_BACKWARD, SIGMOID_BACKWARD, SQUARED_ERROR_BACKWARD -> true;
            default -> false;
        };
    }
}

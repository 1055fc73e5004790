package bitskip.engine.tornado;

import bitskip.engine.Tensor;

/** A tensor of the TornadoVM backend: a range of floats in its device arena, returned to it by {@link #close}. */
final class TornadoTensor implements Tensor {
    final TornadoBackend owner;
    final String name;
    final int offset, size;
    boolean closed;

    TornadoTensor(TornadoBackend owner, String name, int offset, int size) {
        this.owner = owner;
        this.name = name;
        this.offset = offset;
        this.size = size;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public void close() {
        owner.release(this);
    }

    @Override
    public String toString() {
        return "tornado tensor " + name + " [" + size + "] at " + offset;
    }
}

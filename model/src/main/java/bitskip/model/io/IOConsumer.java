package bitskip.model.io;

import java.io.IOException;

/** A consumer that may throw {@link IOException}: the body of an {@link AtomicFiles} write. */
@FunctionalInterface
public interface IOConsumer<T> {
    void accept(T t) throws IOException;
}

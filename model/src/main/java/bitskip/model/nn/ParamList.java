package bitskip.model.nn;

import bitskip.engine.Backend;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The model's parameters in a fixed order (the order of initialization and of the checkpoint). */
public final class ParamList {
    private final Backend be;
    private final List<Param> list = new ArrayList<>();
    private final Map<String, Param> byName = new LinkedHashMap<>();

    ParamList(Backend be) {
        this.be = be;
    }

    Param add(String name, Param.Kind kind, int... shape) {
        Param p = new Param(be, name, kind, shape);
        if (byName.put(name, p) != null) {
            throw new IllegalStateException("duplicate parameter " + name);
        }
        list.add(p);
        return p;
    }

    public List<Param> all() {
        return Collections.unmodifiableList(list);
    }

    /** The parameter of that checkpoint name, or null. */
    public Param get(String name) {
        return byName.get(name);
    }

    public long count() {
        long n = 0;
        for (Param p : list) {
            n += p.size;
        }
        return n;
    }
}

package bitskip.model.cli;

import bitskip.engine.Backends;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The fixed choices of the command line as enums, so that picocli lists them in the help
 * ({@code ${COMPLETION-CANDIDATES}}) and refuses anything else naming the option and the choices. Each
 * constant prints as what the user types ({@code paper-85m}).
 */
final class Choices {
    private Choices() {}

    /** "PAPER_85M" -> "paper-85m". */
    private static String spelled(Enum<?> e) {
        return e.name().toLowerCase(Locale.ROOT).replace('_', '-');
    }

    enum Preset {
        MICRO, TINY, SMALL, PAPER_85M;

        @Override
        public String toString() {
            return spelled(this);
        }
    }

    enum Profile {
        PAPER, REFERENCE;

        @Override
        public String toString() {
            return spelled(this);
        }
    }

    enum Variant {
        BASELINE, H_ONLY, EE_ONLY, BITSKIP;

        @Override
        public String toString() {
            return spelled(this);
        }
    }

    /** What an ablation runs. */
    enum Runs {
        FACTORIAL, SWEEPS, EXIT_HEADS, ALL;

        @Override
        public String toString() {
            return spelled(this);
        }
    }

    /** Registers for every choice enum a converter that takes what the user types and lists only that. */
    static void registerConverters(picocli.CommandLine cl) {
        for (Class<? extends Enum<?>> type : List.of(Preset.class, Profile.class, Variant.class, Runs.class)) {
            register(cl, type);
        }
    }

    private static <E extends Enum<?>> void register(picocli.CommandLine cl, Class<E> type) {
        cl.registerConverter(type, value -> {
            for (E e : type.getEnumConstants()) {
                if (e.toString().equals(value)) {
                    return e;
                }
            }
            List<String> names = new ArrayList<>();
            for (E e : type.getEnumConstants()) {
                names.add(e.toString());
            }
            throw new picocli.CommandLine.TypeConversionException("'" + value + "' is not one of " + String.join(", ", names));
        });
    }

    /** The backends' names for help and completion (the set depends on the build, so not an enum). */
    static final class BackendNames extends ArrayList<String> {
        BackendNames() {
            Backends.names().forEach(this::add);
        }
    }
}

package bitskip.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** A required backend or data set that cannot run fails the test; one not required is skipped with its reason. */
class RequirementsTest {
    private String saved;

    @BeforeEach
    void save() {
        saved = System.getProperty(Requirements.PROPERTY);
    }

    @AfterEach
    void restore() {
        if (saved == null) {
            System.clearProperty(Requirements.PROPERTY);
        } else {
            System.setProperty(Requirements.PROPERTY, saved);
        }
    }

    @Test
    void availableIsNeverSkippedRequiredOrNot() {
        System.setProperty(Requirements.PROPERTY, "cpu");
        assertEquals(Optional.empty(), Requirements.skipOrFail("cpu", null));
        assertEquals(Optional.empty(), Requirements.skipOrFail("opencl", null));
    }

    @Test
    void missingAndRequiredFailsNamingItAndWhy() {
        System.setProperty(Requirements.PROPERTY, " cpu, opencl ");
        AssertionError e = assertThrows(AssertionError.class, () -> Requirements.skipOrFail("opencl", "no ICD loader"));
        assertTrue(e.getMessage().contains("opencl is required") && e.getMessage().contains("no ICD loader"), e.getMessage());
    }

    @Test
    void missingAndNotRequiredIsASkipWithTheReason() {
        System.setProperty(Requirements.PROPERTY, "cpu");
        assertEquals(Optional.of("no ICD loader"), Requirements.skipOrFail("opencl", "no ICD loader"));
    }

    @Test
    void unknownNamesAreErrorsNotSilentlyIgnored() {
        System.setProperty(Requirements.PROPERTY, "cpu,opencll");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Requirements::required);
        assertTrue(e.getMessage().contains("'opencll'") && e.getMessage().contains("known: cpu, opencl, tornado, data, spark, bf16"),
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Requirements.skipOrFail("gpu", null));
    }
}

package bitskip.model.nn;

import static org.junit.jupiter.api.Assumptions.assumeFalse;

import bitskip.engine.Backend;
import bitskip.engine.opencl.OpenCLBackend;
import bitskip.engine.opencl.OpenCLDevices;
import bitskip.model.config.Configs;
import bitskip.model.config.Presets;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Whole training steps (forward, backward, optimizer) of the micro model on every OpenCL device present,
 * against the Java reference: every variant and profile, with layer skipping and dropout on
 * ({@link TrainStepCheck}: losses to 1e-5 relative, every gradient and every updated parameter to 1e-4 of the
 * tensor's largest element; the devices' whole-tensor reductions run in another order than the reference's),
 * and one configuration of each exit-head design.
 */
class OpenCLTrainStepTest {
    @Test
    void trainingStepMatchesTheReferenceOnEveryOpenCLDevice() {
        assumeFalse(OpenCLDevices.list().isEmpty(), "no OpenCL platform: " + OpenCLDevices.unavailableReason());
        for (OpenCLDevices.Device d : OpenCLDevices.list()) {
            for (String profile : Presets.PROFILES) {
                for (String variant : Presets.VARIANTS) {
                    try (Backend dev = new OpenCLBackend(d)) {
                        TrainStepCheck.check(Presets.build("micro", profile, variant), dev, d.id() + " " + profile + "/" + variant);
                    }
                }
            }
            // the exit adapters (issue 17), with the early-exit gradient kept off the shared head
            try (Backend dev = new OpenCLBackend(d)) {
                TrainStepCheck.check(Configs.override(Presets.build("micro", "paper", "bitskip"),
                        Map.of("exit_head", "adapter", "exit_head_grad_stop", "true"), "test"), dev,
                        d.id() + " paper/bitskip exit_head=adapter, grad stop");
                TrainStepCheck.check(Configs.override(Presets.build("micro", "reference", "ee-only"),
                        Map.of("exit_head", "lowrank", "exit_rank", "3"), "test"), dev,
                        d.id() + " reference/ee-only exit_head=lowrank");
            }
        }
    }
}

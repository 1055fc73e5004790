package bitskip.model.cli;

import bitskip.model.config.Presets;
import bitskip.model.data.Tokenizer;
import bitskip.model.infer.DecodingStrategy;
import bitskip.model.infer.DeployFile;
import bitskip.model.infer.Generator;
import bitskip.model.infer.InferenceModel;
import bitskip.model.infer.LmHead;
import bitskip.model.infer.Parallel;
import bitskip.model.infer.Sampler;
import bitskip.model.infer.Strategies;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bitskip generate}: text from a deployable model. The generated text alone goes to standard output
 * (streamed as tokens become final); the statistics go to standard error.
 */
@Command(name = "generate", mixinStandardHelpOptions = true,
        description = "Generate text with a deployable model (see export), with early exit or self-speculative decoding.")
public final class GenerateCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, description = "A deployable model file (bitskip export).")
    Path model;

    @Option(names = "--prompt", description = "The prompt text (GPT-2 BPE).")
    String prompt;

    @Option(names = "--prompt-ids", split = ",", description = "The prompt as token ids (for models without the GPT-2 vocabulary).")
    List<Integer> promptIds;

    @Option(names = "--max-tokens", defaultValue = "64", description = "Tokens to generate at most (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--greedy", description = "Argmax decoding (the default when no --temperature is given).")
    boolean greedy;

    @Option(names = "--temperature", description = "Sample at this temperature.")
    Float temperature;

    @Option(names = "--top-k", description = "With --temperature: sample among the k most likely tokens (default 0 = all).")
    Integer topK;

    @Option(names = "--top-p", description = "With --temperature: nucleus sampling mass (default 1.0).")
    Float topP;

    @Option(names = "--seed", description = "With --temperature: sampling seed (default 0).")
    Long seed;

    @Option(names = "--strategy", defaultValue = "full",
            description = "full, exit, router, confidence or self-speculative (default: ${DEFAULT-VALUE}).")
    String strategy;

    @Option(names = "--exit-layer", description = "Exit layer E (1..L) of exit and self-speculative (default: L/2).")
    Integer exitLayer;

    @Option(names = "--threshold", description = "p_exit threshold of router (default 0.5, or the model's router_threshold), "
            + "max-probability threshold of confidence (default 0.9).")
    Float threshold;

    @Option(names = "--drafts", defaultValue = "4", description = "Draft tokens K of self-speculative (default: ${DEFAULT-VALUE}).")
    int drafts;

    @Option(names = "--no-draft-head", description = "Ignore the model's draft head: self-speculative drafts and "
            + "confidence exits score the whole vocabulary (by default they use the draft head when the file has one).")
    boolean noDraftHead;

    @Option(names = "--prefill-batch", defaultValue = "64", description = "Prompt tokens per batch (default: ${DEFAULT-VALUE}).")
    int prefillBatch;

    @Option(names = "--threads", description = "Worker threads (default: all cores).")
    Integer threads;

    @Override
    public Integer call() throws Exception {
        Parallel par = threads == null ? Parallel.ofAllCores() : new Parallel(threads);
        InferenceModel m = DeployFile.read(model, par);
        boolean gpt2 = m.vocabSize() == Presets.GPT2_VOCAB;
        Tokenizer tok = gpt2 ? Tokenizer.gpt2() : null;
        int[] ids;
        if (promptIds != null && !promptIds.isEmpty()) {
            ids = promptIds.stream().mapToInt(Integer::intValue).toArray();
        } else if (prompt != null) {
            if (!gpt2) {
                throw new IllegalArgumentException("the model's vocabulary (" + m.vocabSize()
                        + " tokens) is not GPT-2's: give the prompt as --prompt-ids 1,2,3");
            }
            ids = tok.encode(prompt);
        } else {
            throw new IllegalArgumentException("give --prompt TEXT or --prompt-ids 1,2,3");
        }
        boolean useDraft = m.draft() != null && !noDraftHead;
        int L = m.layers();
        int E = exitLayer == null ? Math.max(1, L / 2) : exitLayer;
        if (E < 1 || E > L) {
            throw new IllegalArgumentException("--exit-layer " + E + " must be in [1, " + L + "]");
        }
        DecodingStrategy st = switch (strategy) {
            case "full" -> Strategies.full();
            case "exit" -> Strategies.fixedExit(E);
            case "router" -> Strategies.router(threshold != null ? threshold : m.config.routerThreshold());
            case "confidence" -> useDraft ? Strategies.confidenceDraftFiltered(threshold != null ? threshold : 0.9f)
                    : Strategies.confidence(threshold != null ? threshold : 0.9f);
            case "self-speculative" -> Strategies.selfSpeculative(E, drafts, useDraft);
            default -> throw new IllegalArgumentException("unknown --strategy '" + strategy
                    + "'; known: full, exit, router, confidence, self-speculative");
        };
        if (greedy && temperature != null) {
            throw new IllegalArgumentException("--greedy and --temperature exclude each other");
        }
        if (temperature == null && (topK != null || topP != null || seed != null)) {
            throw new IllegalArgumentException((topP != null ? "--top-p" : topK != null ? "--top-k" : "--seed")
                    + " applies to sampling: give --temperature T too (without it decoding is greedy)");
        }
        Sampler sampler = temperature == null ? Sampler.greedy()
                : Sampler.sampling(temperature, topK == null ? 0 : topK, topP == null ? 1.0f : topP, seed == null ? 0 : seed);
        int eos = gpt2 ? Tokenizer.GPT2_END_OF_TEXT : -1;

        PrintStream out = new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), false,
                StandardCharsets.UTF_8);
        List<Integer> pending = new ArrayList<>();
        Generator.Result r = Generator.generate(m, ids, maxTokens, st, sampler, eos, prefillBatch, t -> {
            if (t == eos) {
                return;
            }
            if (tok == null) {
                out.print(" " + t);
                out.flush();
                return;
            }
            // BPE tokens may split a UTF-8 character: emit bytes once they decode cleanly
            pending.add(t);
            byte[] bytes = tok.decodeBytes(pending.stream().mapToInt(Integer::intValue).toArray());
            String s = new String(bytes, StandardCharsets.UTF_8);
            if (!s.contains("\uFFFD")) {
                out.print(s);
                out.flush();
                pending.clear();
            }
        });
        if (!pending.isEmpty()) {
            out.print(new String(tok.decodeBytes(pending.stream().mapToInt(Integer::intValue).toArray()),
                    StandardCharsets.UTF_8));
        }
        out.println();
        out.flush();
        int made = r.tokens().length;
        if (made < maxTokens && r.tokens()[made - 1] != eos) {
            System.err.println("bitskip: generation stopped after " + made + " of " + maxTokens + " tokens: the context of "
                    + m.ctx() + " positions is full (the prompt took " + ids.length + ")");
        }
        System.err.println(r.stats().summary(st.name(), L) + "; " + par.threads() + " threads; " + m.head().describe()
                + (m.head().format == LmHead.Format.INT8 ? " on " + LmHead.Int8Kernel.chosen().name().toLowerCase(Locale.ROOT) : "")
                + (useDraft ? ", draft head of " + m.draft().size() + " tokens" : "")
                + "; ternary GEMV " + bitskip.model.infer.PackedGemm.kernelName());
        return 0;
    }
}

package bitskip.model.infer;

import static org.junit.jupiter.api.Assertions.*;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The invariants of cached, early-exit and self-speculative decoding. */
class DecodingTest {
    static InferenceModel trained;
    static InferenceModel random;
    /** Trained with exit adapters (exit_head = adapter, the early-exit gradient kept off the shared head). */
    static InferenceModel adapted;
    /** Trained with low-rank exit heads (exit_head = lowrank, rank 4). */
    static InferenceModel lowRanked;

    @BeforeAll
    static void models(@TempDir Path dir) throws Exception {
        BitSkipConfig c = Micro.config("paper", "bitskip", 48);
        trained = InferenceModel.of(Micro.trained(c, 40, dir.resolve("run")), new Parallel(2));
        random = InferenceModel.of(Micro.training(Micro.config("reference", "bitskip", 48), 1, 3), Parallel.serial());
        BitSkipConfig a = Configs.override(c, Map.of("exit_head", "adapter", "exit_head_grad_stop", "true"), "test");
        adapted = InferenceModel.of(Micro.trained(a, 40, dir.resolve("adapted")), new Parallel(2));
        BitSkipConfig lr = Configs.override(c, Map.of("exit_head", "lowrank", "exit_rank", "4"), "test");
        lowRanked = InferenceModel.of(Micro.trained(lr, 40, dir.resolve("lowranked")), new Parallel(2));
    }

    @Test
    void theExitHeadModelsHaveTrainedExitsThatDifferFromTheSharedHead() {
        for (InferenceModel m : new InferenceModel[] {adapted, lowRanked}) {
            float[][] trained = m.exitHeads.w != null ? m.exitHeads.w : m.exitHeads.up;
            for (float[] w : trained) {
                double s = 0;
                for (float x : w) {
                    s += Math.abs(x);
                }
                assertTrue(s > 0, m.config.exitHead() + ": training moved the exit's zero-initialized matrix");
            }
            // its early exits differ from the shared head's on the same hidden state
            Session s = m.newSession(4);
            s.advance(prompt(6, 1), 1, null);
            float[] exit = s.logits(5).clone();
            float[] h = s.hidden(5), norm = new float[h.length], plain = new float[m.vocabSize()];
            RowOps.layerNorm(norm, 0, h, 0, m.finalNormW, m.finalNormB, h.length, m.config.lnEps());
            m.head.forward(plain, norm, 0, 1, Parallel.serial());
            assertFalse(Arrays.equals(exit, plain), m.config.exitHead() + ": exit 1 reads its own head");
        }
    }

    static int[] prompt(int n, long seed) {
        if (seed == 0) {
            int[] p = new int[n];
            for (int i = 0; i < n; i++) {
                p[i] = Micro.Pattern.token(i + 100, 67);
            }
            return p;
        }
        return Micro.tokens(n, 67, seed);
    }

    static int[] greedy(InferenceModel m, int[] prompt, int max, DecodingStrategy s) {
        return Generator.generate(m, prompt, max, s, Sampler.greedy(), -1, 4, null).tokens();
    }

    /** The decode phases the benchmarks print are measured and lie inside the decode time. */
    static void phasesAddUp(DecodeStats st, boolean drafts) {
        assertTrue(st.layerNanos > 0 && st.headNanos > 0, "layers and heads are timed");
        assertEquals(drafts, st.draftNanos > 0, "drafting is timed exactly when there are drafts");
        assertTrue(st.draftNanos + st.layerNanos + st.headNanos <= st.decodeNanos,
                st.draftNanos + " + " + st.layerNanos + " + " + st.headNanos + " ns exceed the decode's " + st.decodeNanos);
    }

    @Test
    void greedySelfSpeculativeEqualsGreedyFullModel() {
        int accepted = 0;
        for (InferenceModel m : new InferenceModel[] {trained, random, adapted, lowRanked}) {
            for (long seed : new long[] {0, 1, 2}) {
                int[] p = prompt(3 + (int) seed * 4, seed);
                int[] full = greedy(m, p, 30, Strategies.full());
                DecodeStats fs = Generator.generate(m, p, 30, Strategies.full(), Sampler.greedy(), -1, 4, null).stats();
                assertEquals(full.length, fs.headPasses, "the full model reads the head once per token");
                phasesAddUp(fs, false);
                for (int[] ek : new int[][] {{1, 1}, {1, 3}, {2, 2}, {2, 5}, {1, 8}, {3, 4}}) {
                    var r = Generator.generate(m, p, 30, Strategies.selfSpeculative(ek[0], ek[1]), Sampler.greedy(),
                            -1, 4, null);
                    assertArrayEquals(full, r.tokens(), "E=" + ek[0] + " K=" + ek[1] + " prompt " + seed);
                    accepted += r.stats().accepted;
                    assertEquals(ek[0] < m.layers(), r.stats().drafted > 0, "drafts unless E = L");
                    // the prefill's head pass, one per draft, one per verification (all its positions at once)
                    assertEquals(1 + r.stats().drafted + r.stats().verifyPasses, r.stats().headPasses,
                            "head passes, E=" + ek[0] + " K=" + ek[1]);
                    phasesAddUp(r.stats(), ek[0] < m.layers());
                }
            }
        }
        assertTrue(accepted > 0, "some drafts are accepted");
    }

    /** A draft vocabulary of the n most frequent tokens of the pattern the trained model learned (and more). */
    static int[] draftIds(InferenceModel m, int n) {
        int[] text = new int[600];
        for (int i = 0; i < text.length; i++) {
            text[i] = i % 5 == 4 ? (i * 31) % m.vocabSize() : Micro.Pattern.token(i, 67);
        }
        return DraftHead.mostFrequent(text, m.vocabSize(), n);
    }

    /**
     * The LayerSkip invariant with the cheaper heads: greedy self-speculation equals greedy decoding of the
     * full model on the same deployed model, with the int8 head, with a draft head (float and int8), and with a
     * draft vocabulary too small to hold every token the model picks. Verification is one head pass per cycle;
     * drafts read the draft head only.
     */
    @Test
    void greedySelfSpeculationWithTheInt8AndDraftHeadsEqualsGreedyFullModel() {
        int drafted = 0, accepted = 0;
        for (InferenceModel base : new InferenceModel[] {trained, random, adapted, lowRanked}) {
            for (int levels : new int[] {0, LmHead.X_LEVELS, LmHead.activationLevels(8)}) { // f32, int8 with 9- and 8-bit codes
                LmHead.Format f = levels == 0 ? LmHead.Format.F32 : LmHead.Format.INT8;
                for (int vd : new int[] {0, 6, 40}) {
                    InferenceModel m = base.withHead(f, levels == 0 ? LmHead.X_LEVELS : levels)
                            .withDraft(vd == 0 ? null : draftIds(base, vd));
                    for (long seed : new long[] {0, 1}) {
                        int[] p = prompt(3 + (int) seed * 4, seed);
                        int[] full = greedy(m, p, 30, Strategies.full());
                        for (int[] ek : new int[][] {{1, 1}, {1, 3}, {2, 5}, {1, 8}}) {
                            var r = Generator.generate(m, p, 30, Strategies.selfSpeculative(ek[0], ek[1]), Sampler.greedy(),
                                    -1, 4, null);
                            String what = m.head().describe() + ", draft " + vd + ", E=" + ek[0] + " K=" + ek[1] + " prompt " + seed;
                            assertArrayEquals(full, r.tokens(), what);
                            DecodeStats st = r.stats();
                            long draftsFromHead = vd == 0 ? st.drafted : 0;
                            assertEquals(1 + draftsFromHead + st.verifyPasses, st.headPasses, "head passes, " + what);
                            assertEquals(vd == 0 ? 0 : st.drafted, st.draftPasses, "draft-head passes, " + what);
                            drafted += vd > 0 ? st.drafted : 0;
                            accepted += vd > 0 ? st.accepted : 0;
                        }
                    }
                }
            }
        }
        assertTrue(accepted > 0 && accepted < drafted, "drafts from the draft head are accepted, not all: " + accepted
                + " of " + drafted);
    }

    @Test
    void sampledSelfSpeculationWithADraftHeadIsReproducible() {
        InferenceModel m = trained.withHead(LmHead.Format.INT8).withDraft(draftIds(trained, 12));
        int[] p = prompt(4, 0);
        int[] a = Generator.generate(m, p, 25, Strategies.selfSpeculative(1, 3), Sampler.sampling(0.9f, 0, 1.0f, 42), -1, 4,
                null).tokens();
        int[] b = Generator.generate(m, p, 25, Strategies.selfSpeculative(1, 3), Sampler.sampling(0.9f, 0, 1.0f, 42), -1, 4,
                null).tokens();
        assertArrayEquals(a, b);
        assertEquals(25, a.length);
    }

    /**
     * The draft-filtered confidence rule at every (position, layer): it never exits where the exact rule does
     * not, and it exits wherever the exact rule does with a most likely token inside the draft vocabulary.
     */
    @Test
    void draftFilteredConfidenceDecidesAsTheExactRuleWhereTheArgmaxIsInTheSubset() {
        int agreedExits = 0, argmaxOutside = 0;
        for (int vd : new int[] {6, 30}) {
            InferenceModel m = trained.withHead(LmHead.Format.INT8).withDraft(draftIds(trained, vd));
            int[] p = prompt(24, 3);
            for (float t : new float[] {0.2f, 0.5f, 0.9f}) {
                Session s = m.newSession(4);
                for (int i = 0; i < p.length; i++) {
                    s.advance(new int[] {p[i]}, 1, null);
                    for (int l = 0; l < m.layers(); l++) {
                        if (l > 0) {
                            s.deepen(l + 1);
                        }
                        boolean exact = Strategies.maxProbability(s.logits(i), m.V) >= t;
                        boolean filtered = Strategies.maxProbability(s.draftLogits(i), vd) >= t
                                && Strategies.maxProbability(s.logits(i), m.V) >= t;
                        boolean inside = java.util.Arrays.binarySearch(m.draft().ids, Sampler.argmax(s.logits(i), m.V)) >= 0;
                        assertFalse(filtered && !exact, "exits only where the exact rule exits");
                        if (inside) {
                            assertEquals(exact, filtered, "argmax in the subset: same decision (t " + t + ", pos " + i + ", layer " + l + ")");
                        } else {
                            argmaxOutside++;
                        }
                        agreedExits += exact && filtered ? 1 : 0;
                    }
                }
            }
        }
        assertTrue(agreedExits > 0, "some exits");
        assertTrue(argmaxOutside > 0, "the small subset misses some argmax tokens");
        var r = Generator.generate(trained.withDraft(draftIds(trained, 30)), prompt(5, 0), 15,
                Strategies.confidenceDraftFiltered(0.5f), Sampler.greedy(), -1, 4, null);
        assertEquals(15, r.tokens().length);
        assertTrue(r.stats().draftPasses > 0);
    }

    @Test
    void draftLogitsAreTheFullHeadsRowsOfTheDraftVocabulary() {
        for (InferenceModel base : new InferenceModel[] {random, adapted, lowRanked}) {
            for (LmHead.Format f : LmHead.Format.values()) {
                InferenceModel m = base.withHead(f).withDraft(draftIds(base, 20));
                Session s = m.newSession(4);
                s.advance(prompt(9, 4), 2, null);
                for (int pos = 0; pos < 9; pos++) {
                    float[] d = s.draftLogits(pos).clone(), full = s.logits(pos);
                    for (int j = 0; j < d.length; j++) {
                        assertEquals(full[m.draft().ids[j]], d[j], base.config.exitHead() + " " + f + " position " + pos
                                + " draft row " + j);
                    }
                }
            }
        }
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> {
            Session s = random.newSession(1);
            s.advance(new int[] {1}, 1, null);
            s.draftLogits(0);
        });
        assertTrue(e.getMessage().contains("no draft head"), e.getMessage());
    }

    @Test
    void deepenRunsEarlierPositionsThroughMoreLayersAsAdvanceWould() {
        int L = random.layers();
        int[] p = prompt(11, 6);
        Session a = random.newSession(4), b = random.newSession(4);
        a.advance(p, 1, null);
        for (int d = 2; d <= L; d++) {
            assertEquals(d, a.deepen(d));
        }
        b.advance(p, L, null);
        for (int pos = 0; pos < p.length; pos++) {
            assertEquals(L, a.frontier(pos));
            assertArrayEquals(b.logits(pos).clone(), a.logits(pos).clone(), "position " + pos);
        }
    }

    @Test
    void argmaxIsTheLowestIndexOfTheLargestLogit() {
        Random r = new Random(3);
        for (int V : new int[] {1, 7, 16, 17, 100, 50257}) {
            for (int trial = 0; trial < 20; trial++) {
                float[] x = new float[V + 3];
                for (int i = 0; i < x.length; i++) {
                    x[i] = (float) r.nextInt(trial % 2 == 0 ? 5 : 100000); // many ties, or few
                }
                int want = 0;
                for (int i = 1; i < V; i++) {
                    if (x[i] > x[want]) {
                        want = i;
                    }
                }
                assertEquals(want, Sampler.argmax(x, V), "V " + V + " trial " + trial);
                // the same row at an offset in a block (verification reads its rows in place)
                float[] block = new float[V + 5 + 3];
                java.util.Arrays.fill(block, 1e9f); // larger than every logit: must stay outside the row
                System.arraycopy(x, 0, block, 5, V);
                assertEquals(want, Sampler.argmax(block, 5, V), "offset row, V " + V + " trial " + trial);
            }
        }
        assertEquals(2, Sampler.argmax(new float[] {9, 1, Float.NaN, 3, 2}, 1, 4), "a NaN skipped in an offset row");
        assertEquals(2, Sampler.argmax(new float[] {1, Float.NaN, 3, 2}, 4), "a NaN is skipped as the scalar scan does");
        assertEquals(0, Sampler.argmax(new float[] {-0.0f, 0.0f}, 2), "-0 and +0 tie: the first");
    }

    @Test
    void selfSpeculationRunsToTheEndOfTheContext() {
        int[] p = prompt(5, 0);
        int max = trained.ctx() - p.length; // fills the whole context
        int[] full = greedy(trained, p, max, Strategies.full());
        assertEquals(max, full.length);
        assertArrayEquals(full, greedy(trained, p, max, Strategies.selfSpeculative(1, 6)));
    }

    @Test
    void exitAtTheLastLayerEqualsTheFullModel() {
        int L = trained.layers();
        for (long seed : new long[] {0, 5}) {
            int[] p = prompt(6, seed);
            assertArrayEquals(greedy(trained, p, 20, Strategies.full()),
                    greedy(trained, p, 20, Strategies.fixedExit(L)));
            assertArrayEquals(greedy(trained, p, 20, Strategies.full()),
                    greedy(trained, p, 20, Strategies.selfSpeculative(L, 3)));
        }
    }

    @Test
    void batchedPrefillEqualsOneTokenAtATime() {
        int[] p = prompt(20, 7);
        Session a = random.newSession(64), b = random.newSession(1);
        a.advance(p, random.layers(), null);
        for (int t : p) {
            b.advance(new int[] {t}, random.layers(), null);
        }
        for (int pos = 0; pos < p.length; pos++) {
            assertArrayEquals(b.logits(pos).clone(), a.logits(pos).clone(), "position " + pos);
        }
    }

    @Test
    void cropThenReplayEqualsRecomputingFromScratch() {
        int L = random.layers();
        int[] a = prompt(10, 8), b = prompt(7, 9), c = prompt(9, 10);
        Session s = random.newSession(4);
        s.advance(a, L, null);
        s.advance(b, L, null);
        s.crop(a.length);
        assertEquals(a.length, s.length());
        for (int l = 0; l < L; l++) {
            assertEquals(a.length, s.cache(l).fill());
        }
        s.advance(c, L, null);

        Session fresh = random.newSession(16);
        int[] ac = Arrays.copyOf(a, a.length + c.length);
        System.arraycopy(c, 0, ac, a.length, c.length);
        fresh.advance(ac, L, null);
        for (int pos = 0; pos < ac.length; pos++) {
            assertArrayEquals(fresh.logits(pos).clone(), s.logits(pos).clone(), "position " + pos);
        }
    }

    @Test
    void blockLogitsEqualOneByOneInOneHeadPassAndDoNotOutliveTheirPositions() {
        int L = random.layers();
        int[] a = prompt(10, 11), c = prompt(5, 12);
        Session s = random.newSession(16);
        s.advance(a, L, null);
        float[][] single = new float[a.length][];
        for (int pos = 0; pos < a.length; pos++) {
            single[pos] = s.logits(pos).clone();
        }
        long passes = s.headPasses();
        s.prepareLogits(2, 6);
        for (int pos = 2; pos < 8; pos++) {
            assertArrayEquals(single[pos], s.logits(pos).clone(), "position " + pos);
        }
        assertEquals(passes + 1, s.headPasses(), "six positions' logits from one pass over the head");

        // crop and replay other tokens: the block's rows for the replaced positions must not come back
        s.prepareLogits(0, 10);
        s.crop(5);
        s.advance(c, L, null);
        Session fresh = random.newSession(16);
        int[] ac = Arrays.copyOf(a, 10);
        System.arraycopy(c, 0, ac, 5, 5);
        fresh.advance(ac, L, null);
        for (int pos = 0; pos < 10; pos++) {
            assertArrayEquals(fresh.logits(pos).clone(), s.logits(pos).clone(), "position " + pos);
        }
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.prepareLogits(8, 5));
        assertEquals("positions [8, 13) must lie in [0, 10)", e.getMessage());
    }

    /**
     * The KV policy (lazy fill): tokens that exit early leave layers above their exit empty; a later token
     * that goes deeper first completes those layers from the exited tokens' states. Its output, and every
     * cache entry, equals the full model's, whatever the exits were.
     */
    @Test
    void earlyExitsLeaveUsableCachesForDeeperTokens() {
        int L = random.layers();
        int[] p = prompt(24, 11);
        Random r = new Random(12);
        Session mixed = random.newSession(3);
        Session full = random.newSession(3);
        for (int i = 0; i < p.length; i++) {
            int exitAfter = r.nextInt(L); // 0-based layer after which this token exits (L-1: the full model)
            int d = mixed.advance(new int[] {p[i]}, L, (s, l, pos) -> l >= exitAfter);
            assertEquals(exitAfter + 1, d);
            full.advance(new int[] {p[i]}, L, null);
            // an early exit's output is the full model's output at that layer: compare with a fixed exit
            Session exitOnly = random.newSession(8);
            exitOnly.advance(Arrays.copyOf(p, i + 1), d, null);
            assertArrayEquals(exitOnly.logits(i).clone(), mixed.logits(i).clone(), "exit output at " + i);
            if (d == L) {
                assertArrayEquals(full.logits(i).clone(), mixed.logits(i).clone(), "deep token " + i);
                for (int l = 0; l < L; l++) {
                    assertEquals(i + 1, mixed.cache(l).fill(), "layer " + l + " complete after a deep token");
                }
            }
        }
        // a last deep token completes every layer; the caches equal the full model's bit for bit
        mixed.advance(new int[] {p[0]}, L, null);
        full.advance(new int[] {p[0]}, L, null);
        for (int l = 0; l < L; l++) {
            int n = mixed.length() * random.KV;
            assertArrayEquals(full.cache(l).keys(mixed.length()), mixed.cache(l).keys(mixed.length()), "keys " + l);
            assertArrayEquals(Arrays.copyOf(full.cache(l).v, n), Arrays.copyOf(mixed.cache(l).v, n), "values " + l);
        }
        assertArrayEquals(full.logits(p.length).clone(), mixed.logits(p.length).clone());
    }

    @Test
    void routerAndConfidenceExitsProduceTokensAndReportTheirExits() {
        for (DecodingStrategy st : new DecodingStrategy[] {Strategies.router(0.5f), Strategies.confidence(0.2f),
                Strategies.fixedExit(1)}) {
            var r = Generator.generate(trained, prompt(5, 0), 15, st, Sampler.greedy(), -1, 4, null);
            assertEquals(15, r.tokens().length, st.name());
            double mean = r.stats().meanExitLayer();
            assertTrue(mean >= 1 && mean <= trained.layers(), st.name() + " mean exit " + mean);
        }
        var one = Generator.generate(trained, prompt(5, 0), 10, Strategies.fixedExit(1), Sampler.greedy(), -1, 4, null);
        assertEquals(1.0, one.stats().meanExitLayer());
    }

    @Test
    void samplingIsReproducibleBySeedAndStopsAtEos() {
        int[] p = prompt(4, 0);
        for (DecodingStrategy st : new DecodingStrategy[] {Strategies.full(), Strategies.selfSpeculative(1, 3)}) {
            int[] a = Generator.generate(trained, p, 25, st, Sampler.sampling(0.9f, 20, 0.95f, 42), -1, 4, null).tokens();
            int[] b = Generator.generate(trained, p, 25, st, Sampler.sampling(0.9f, 20, 0.95f, 42), -1, 4, null).tokens();
            assertArrayEquals(a, b, st.name());
            assertEquals(25, a.length);
            int eos = a[3];
            int[] c = Generator.generate(trained, p, 25, st, Sampler.sampling(0.9f, 20, 0.95f, 42), eos, 4, null).tokens();
            int first = 0;
            while (a[first] != eos) {
                first++;
            }
            assertArrayEquals(Arrays.copyOf(a, first + 1), c, "stops after the end-of-text token");
        }
        // top-k 1 is greedy
        assertArrayEquals(greedy(trained, p, 12, Strategies.full()),
                Generator.generate(trained, p, 12, Strategies.full(), Sampler.sampling(1.5f, 1, 1.0f, 1), -1, 4, null).tokens());
    }
}

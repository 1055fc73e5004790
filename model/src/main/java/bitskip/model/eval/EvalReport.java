package bitskip.model.eval;

import bitskip.model.config.BitSkipConfig;
import bitskip.model.config.Configs;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Locale;

/**
 * What {@code bitskip eval} measured on one checkpoint, and its three renderings: a Markdown report for the
 * terminal, JSON ({@code --json}) and CSV ({@code --csv}). Every perplexity names its convention.
 *
 * @param deployment null when the deployed model was not evaluated
 * @param deployed   null when the deployed model was not evaluated
 */
public record EvalReport(String checkpoint, int step, BitSkipConfig config, String text, int textTokens,
                         Deployment deployment, Perplexity latent, Perplexity deployed, WeightStats weights) {

    /** Relative change of the deployed model's perplexity over the latent one, in percent (token-weighted). */
    public double degradationPercent() {
        return deployed == null ? Double.NaN : 100.0 * (deployed.ppl() / latent.ppl() - 1.0);
    }

    // ---- Markdown ---------------------------------------------------------------------------------

    public String toMarkdown() {
        BitSkipConfig c = config;
        StringBuilder s = new StringBuilder();
        s.append("# Evaluation of ").append(checkpoint).append("\n\n");
        s.append(String.format(Locale.ROOT, "%s / %s / %s, step %d; %s: %,d tokens, %d batches of %d x %d (%,d predicted tokens)%n%n",
                c.preset(), c.profile(), c.variant(), step, text, textTokens, latent.batches(), latent.batchSize(), c.ctx(),
                latent.tokens()));

        s.append("## Perplexity (Table 3)\n\n");
        s.append("| model | PPL token-weighted | PPL mean of batch means | loss token-weighted |\n|---|---:|---:|---:|\n");
        row(s, "latent (as trained, " + (c.ternary() ? "W1.58/A" + c.projectionBits() : "full-precision W") + ")", latent);
        if (deployed != null) {
            row(s, "deployed 1.58-bit (" + deployment.id + ")", deployed);
            s.append(String.format(Locale.ROOT, "%nDeployed: %s. Change: %+.2f%% (token-weighted).%n", deployment.description,
                    degradationPercent()));
        }
        s.append('\n');

        if (latent.exitLoss() != null) {
            s.append("## Per-exit perplexity (Table 5: final LayerNorm + shared head on each layer's output)\n\n");
            s.append("| exit layer | loss | PPL token-weighted | PPL mean of batch means |\n|---:|---:|---:|---:|\n");
            for (int l = 0; l < latent.exitLoss().length; l++) {
                s.append(String.format(Locale.ROOT, "| %d | %.4f | %s | %s |%n", l, latent.exitLoss()[l],
                        ppl(latent.exitPpl(l)), ppl(latent.exitPplBatchMean(l))));
            }
            s.append('\n');
        }

        WeightStats.Summary w = weights.summary();
        s.append("## Weight distribution (Table 4)\n\n");
        s.append("| matrices | mean scale (alpha) | sparsity (zero share) | Hi-Sparse (>= 50% zeros) | +1 share | -1 share |\n");
        s.append("|---:|---:|---:|---:|---:|---:|\n");
        s.append(String.format(Locale.ROOT, "| %d | %.4f | %.1f%% | %d | %.1f%% | %.1f%% |%n%n", w.matrices(), w.meanAlpha(),
                100 * w.meanZeroFrac(), w.hiSparse(), 100 * w.meanPlusFrac(), 100 * w.meanMinusFrac()));
        s.append("<details><summary>per matrix</summary>\n\n");
        s.append("| matrix | shape | alpha | zero | +1 | -1 |\n|---|---|---:|---:|---:|---:|\n");
        for (WeightStats.Matrix m : weights.matrices()) {
            s.append(String.format(Locale.ROOT, "| %s | %dx%d | %.5f | %.1f%% | %.1f%% | %.1f%% |%n", m.name(), m.rows(), m.cols(),
                    m.alpha(), 100 * m.zeroFrac(), 100 * m.plusFrac(), 100 * m.minusFrac()));
        }
        s.append("\n</details>\n");
        return s.toString();
    }

    private static void row(StringBuilder s, String name, Perplexity p) {
        s.append(String.format(Locale.ROOT, "| %s | %s | %s | %.4f |%n", name, ppl(p.ppl()), ppl(p.pplBatchMean()), p.loss()));
    }

    static String ppl(double x) {
        return x >= 1e4 ? String.format(Locale.ROOT, "%,.0f", x) : String.format(Locale.ROOT, "%.2f", x);
    }

    // ---- JSON -------------------------------------------------------------------------------------

    public ObjectNode toJson() {
        ObjectNode o = Configs.JSON.createObjectNode();
        o.put("checkpoint", checkpoint);
        o.put("step", step);
        o.put("preset", config.preset());
        o.put("profile", config.profile());
        o.put("variant", config.variant());
        o.put("text", text);
        o.put("text_tokens", textTokens);
        o.set("latent", json(latent));
        if (deployed != null) {
            ObjectNode d = json(deployed);
            d.put("deployment", deployment.id);
            d.put("description", deployment.description);
            d.put("change_percent_token_weighted", degradationPercent());
            o.set("deployed", d);
        }
        WeightStats.Summary w = weights.summary();
        ObjectNode ws = o.putObject("weights");
        ws.put("matrices", w.matrices());
        ws.put("mean_alpha", w.meanAlpha());
        ws.put("mean_zero_frac", w.meanZeroFrac());
        ws.put("hi_sparse", w.hiSparse());
        ws.put("mean_plus_frac", w.meanPlusFrac());
        ws.put("mean_minus_frac", w.meanMinusFrac());
        ArrayNode per = ws.putArray("per_matrix");
        for (WeightStats.Matrix m : weights.matrices()) {
            ObjectNode x = per.addObject();
            x.put("name", m.name());
            x.put("rows", m.rows());
            x.put("cols", m.cols());
            x.put("alpha", m.alpha());
            x.put("zero_frac", m.zeroFrac());
            x.put("plus_frac", m.plusFrac());
            x.put("minus_frac", m.minusFrac());
        }
        o.set("config", Configs.JSON.valueToTree(config));
        return o;
    }

    private static ObjectNode json(Perplexity p) {
        ObjectNode o = Configs.JSON.createObjectNode();
        o.put("tokens", p.tokens());
        o.put("batches", p.batches());
        o.put("batch_size", p.batchSize());
        o.put("loss_" + Perplexity.TOKEN_WEIGHTED, p.loss());
        o.put("ppl_" + Perplexity.TOKEN_WEIGHTED, p.ppl());
        o.put("loss_" + Perplexity.MEAN_OF_BATCH_MEANS, p.lossBatchMean());
        o.put("ppl_" + Perplexity.MEAN_OF_BATCH_MEANS, p.pplBatchMean());
        if (p.exitLoss() != null) {
            ArrayNode ex = o.putArray("exits");
            for (int l = 0; l < p.exitLoss().length; l++) {
                ObjectNode e = ex.addObject();
                e.put("layer", l);
                e.put("loss_" + Perplexity.TOKEN_WEIGHTED, p.exitLoss()[l]);
                e.put("ppl_" + Perplexity.TOKEN_WEIGHTED, p.exitPpl(l));
                e.put("loss_" + Perplexity.MEAN_OF_BATCH_MEANS, p.exitLossBatchMean()[l]);
                e.put("ppl_" + Perplexity.MEAN_OF_BATCH_MEANS, p.exitPplBatchMean(l));
            }
        }
        return o;
    }

    // ---- CSV --------------------------------------------------------------------------------------

    /** One table in long form: perplexity rows (kind "ppl") and weight rows (kind "weights"). */
    public String toCsv() {
        StringBuilder s = new StringBuilder("kind,model,name,convention,loss,ppl,alpha,zero_frac,plus_frac,minus_frac\n");
        csvPpl(s, "latent", latent);
        if (deployed != null) {
            csvPpl(s, "deployed_" + deployment.id, deployed);
        }
        for (WeightStats.Matrix m : weights.matrices()) {
            s.append(String.format(Locale.ROOT, "weights,latent,%s,,,,%.8g,%.6f,%.6f,%.6f%n", m.name(), m.alpha(), m.zeroFrac(),
                    m.plusFrac(), m.minusFrac()));
        }
        WeightStats.Summary w = weights.summary();
        s.append(String.format(Locale.ROOT, "weights,latent,mean_over_%d_matrices,hi_sparse=%d,,,%.8g,%.6f,%.6f,%.6f%n",
                w.matrices(), w.hiSparse(), w.meanAlpha(), w.meanZeroFrac(), w.meanPlusFrac(), w.meanMinusFrac()));
        return s.toString();
    }

    private static void csvPpl(StringBuilder s, String model, Perplexity p) {
        s.append(String.format(Locale.ROOT, "ppl,%s,final,%s,%.8g,%.8g,,,,%n", model, Perplexity.TOKEN_WEIGHTED, p.loss(), p.ppl()));
        s.append(String.format(Locale.ROOT, "ppl,%s,final,%s,%.8g,%.8g,,,,%n", model, Perplexity.MEAN_OF_BATCH_MEANS,
                p.lossBatchMean(), p.pplBatchMean()));
        if (p.exitLoss() != null) {
            for (int l = 0; l < p.exitLoss().length; l++) {
                s.append(String.format(Locale.ROOT, "ppl,%s,exit_%d,%s,%.8g,%.8g,,,,%n", model, l, Perplexity.TOKEN_WEIGHTED,
                        p.exitLoss()[l], p.exitPpl(l)));
                s.append(String.format(Locale.ROOT, "ppl,%s,exit_%d,%s,%.8g,%.8g,,,,%n", model, l, Perplexity.MEAN_OF_BATCH_MEANS,
                        p.exitLossBatchMean()[l], p.exitPplBatchMean(l)));
            }
        }
    }
}

import Foundation

/// "Verdicts at a glance": one row per comparison of every group, so the report opens with the
/// answer to each of the paper's claims before the evidence behind it.
enum VerdictSummary {
    static func markdown(_ results: [ClaimResult]) -> String {
        var lines = [
            "## Verdicts at a glance", "",
            "One row per comparison; the sections below give the tables, plots and per-seed values. Supported or "
                + "contradicted: the mean difference over seeds exceeds twice its standard error; with one seed "
                + "on a side there is no standard error and a verdict is at most “suggests”. Runs still training are left "
                + "out of the verdicts when their setting has a finished seed (the tables below show how far they are).",
            "",
            "| Claim | Candidate vs baseline | Seeds | Quantity | Candidate | Baseline | Difference (± SE) | Verdict |",
            "|---|---|---:|---|---:|---:|---:|---|",
        ]
        for result in results {
            let claim = Markdown.cell(result.group.labelledName)
            switch result.outcome {
            case .noRuns:
                lines.append("| \(claim) | — | — | — | — | — | — | not evaluated: no runs yet |")
            case .singleRun(let run):
                lines.append("| \(claim) | \(Markdown.cell(run)) | — | — | — | — | — | not evaluated: one setting |")
            case .baselineMissing(let run):
                lines.append(
                    "| \(claim) | — | — | — | — | — | — | not evaluated: baseline `\(Markdown.cell(run))` missing |")
            case .comparisons(let comparisons):
                for c in comparisons { lines.append(row(claim, c, flagged: flagged(c, result.cleanAccuracy))) }
            }
        }
        return lines.joined(separator: "\n") + "\n\n"
    }

    private static func row(_ claim: String, _ c: Comparison, flagged: Bool) -> String {
        let pair = Markdown.cell(c.baseline.map { "\(c.candidate) vs \($0)" } ?? c.candidate)
        var cells = [claim, pair]
        if let r = c.replicates {
            let accuracy = r.measure.isAccuracy
            let decimals = r.measure == .epochsToThreshold ? 1 : 3
            func value(_ v: Double) -> String {
                accuracy ? Markdown.percent(v) : Markdown.number(v, decimals: decimals)
            }
            // A spread or a difference: percentage points for accuracies, the plain number otherwise.
            func spread(_ x: Double) -> String {
                accuracy ? Markdown.number(100 * x, decimals: 1) : Markdown.number(x, decimals: decimals)
            }
            func side(_ s: SeedValues) -> String {
                value(s.mean) + (s.standardDeviation.map { " ± " + spread($0) } ?? "")
            }
            func points(_ d: Double) -> String { accuracy ? Markdown.points(d) : (d >= 0 ? "+" : "") + spread(d) }
            let se = r.standardError.map { " ± " + spread($0) } ?? ""
            cells += [
                "\(r.values.candidate.count) vs \(r.values.baseline.count)", quantity(r.measure),
                side(r.values.candidate), side(r.values.baseline), points(r.difference) + se,
            ]
        } else {
            cells += ["—", "—", "—", "—", "—"]
        }
        let why = c.verdict == .notEvaluated ? reason(c.evidence).map { ": " + $0 } ?? "" : ""
        cells.append(word(c.verdict) + why + (flagged ? " (a model below the clean-accuracy bar)" : ""))
        return "| " + cells.joined(separator: " | ") + " |"
    }

    private static func flagged(_ c: Comparison, _ check: CleanAccuracyCheck?) -> Bool {
        guard let check else { return false }
        return !check.runsBelowBar(settings: [c.candidate] + (c.baseline.map { [$0] } ?? [])).isEmpty
    }

    static func quantity(_ m: ReplicateComparison.Measure) -> String {
        switch m {
        case .meanValidationAccuracy: return "mean validation accuracy over epochs"
        case .meanTestAccuracy: return "mean test accuracy over epochs"
        case .bestTestAccuracy: return "best test accuracy"
        case .finalTestAccuracy: return "final test accuracy"
        case .meanAdversarialAccuracy: return "mean adversarial accuracy"
        case .meanAdversarialFractionOfClean: return "mean adversarial accuracy / clean accuracy"
        case .featureAngleRatio: return "intra/inter-class angle ratio (lower: better)"
        case .epochsToThreshold: return "epochs to the threshold (lower: better)"
        }
    }

    /// Why a comparison has no verdict, in a few words (the group's text says it in full).
    static func reason(_ evidence: Evidence) -> String? {
        guard case .unavailable(let why) = evidence else { return nil }
        switch why {
        case .runMissing: return "run missing"
        case .noCommonEpochs: return "no epochs in common"
        case .noCommonTestAccuracies: return "no comparable test accuracies"
        case .noTestAccuracy: return "no test accuracy"
        case .noMatchedAttacks: return "no matching attacks"
        case .noFeatures: return "no features"
        }
    }

    static func word(_ v: Verdict) -> String {
        switch v {
        case .supported: return "**supported**"
        case .contradicted: return "**contradicted**"
        case .inconclusive: return "inconclusive"
        case .mixed: return "mixed"
        case .suggests: return "suggests (1 seed)"
        case .suggestsAgainst: return "suggests against (1 seed)"
        case .notEvaluated: return "not evaluated"
        }
    }
}

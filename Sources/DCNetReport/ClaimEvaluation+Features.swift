import Foundation

// The feature-separation claim and the clean-accuracy bar: the parts of the evaluation that read
// more than the epoch records.

extension ClaimEvaluator {
    /// The candidate's penultimate features separate the classes better than the baseline's: a
    /// smaller intra/inter-class angle ratio, per seed. The first seed with features of each side is
    /// the evidence; seeds without features are left out (and named), and with none on a side the
    /// comparison is not evaluated.
    func separation(
        candidate: String, baseline: String, _ candidates: [Replicate], _ baselines: [Replicate]
    ) -> Comparison {
        func withRatio(_ replicates: [Replicate]) -> [(run: String, geometry: FeatureGeometry)] {
            replicates.compactMap { r in
                r.featureGeometry.flatMap { $0.ratio.isFinite ? (r.name, $0) : nil }
            }
        }
        let lacking = (candidates + baselines).filter { $0.featureGeometry?.ratio.isFinite != true }.map(\.name)
        let (ours, theirs) = (withRatio(candidates), withRatio(baselines))
        guard let first = ours.first, let baseFirst = theirs.first else {
            return Comparison(
                candidate: candidate, baseline: baseline, verdict: .notEvaluated,
                evidence: .unavailable(.noFeatures(lacking)))
        }
        // Smaller is the claimed direction: "ahead" when the baseline's ratio is the larger one.
        let direction = Direction(
            difference: baseFirst.geometry.ratio - first.geometry.ratio, noiseMargin: noiseMargin)
        let verdict: Verdict = direction == .ahead ? .supported : (direction == .behind ? .contradicted : .inconclusive)
        func values(_ list: [(run: String, geometry: FeatureGeometry)]) -> SeedValues {
            SeedValues(runs: list.map(\.run), values: list.map(\.geometry.ratio))
        }
        let seeds = ReplicateComparison(
            measure: .featureAngleRatio, values: Paired(values(ours), values(theirs)), threshold: nil,
            epochsToReach: nil, comparedEpochs: [])
        let statistics = SeparationStatistics(
            runs: Paired(first.run, baseFirst.run),
            intraClassAngle: Paired(first.geometry.intraClassAngle, baseFirst.geometry.intraClassAngle),
            interClassAngle: Paired(first.geometry.interClassAngle, baseFirst.geometry.interClassAngle),
            ratio: Paired(first.geometry.ratio, baseFirst.geometry.ratio), direction: direction,
            runsWithoutFeatures: lacking)
        return Comparison(
            candidate: candidate, baseline: baseline, verdict: combined(verdict, seeds, test: .betterSeparation),
            evidence: .separation(statistics), replicates: seeds)
    }

    /// Every run of the group the verdict could use (each seed with data, in group order) against
    /// the bar, on its final clean test accuracy (a run exactly at the bar, give or take the rounding
    /// of a written fraction, meets it).
    func cleanAccuracy(_ group: ExperimentGroup, bar: Double, replicates: [String: [Replicate]]) -> CleanAccuracyCheck {
        let runs = orderedUnique(group.runs).flatMap { setting in
            (replicates[setting] ?? []).map { replicate in
                let accuracy = RunSummary(replicate.metrics).finalTestAccuracy.flatMap { $0.isFinite ? $0 : nil }
                return CleanAccuracyCheck.Run(
                    setting: setting, run: replicate.name, accuracy: accuracy,
                    meetsBar: accuracy.map { $0 >= bar - 1e-9 } ?? false)
            }
        }
        return CleanAccuracyCheck(bar: bar, runs: runs)
    }
}

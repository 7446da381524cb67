import Foundation

// The robustness claim: adversarial accuracy compared attack setting by attack setting, on the first
// seed (`robustness`) and as a mean per seed (`robustnessSeeds`).

extension ClaimEvaluator {
    /// The first seed: the settings where the candidate is ahead and behind, and the mean
    /// adversarial accuracy of each side over the settings both were attacked under.
    func robustness(
        _ metrics: RunMetrics, _ baseMetrics: RunMetrics, peers: Paired<[String]>
    ) -> (Verdict, Evidence) {
        let ours = attackTable(metrics, peers: peers.candidate)
        let theirs = attackTable(baseMetrics, peers: peers.baseline)
        let shared = ours.keys.filter { theirs[$0] != nil }.sorted()
        guard !shared.isEmpty else { return (.notEvaluated, .unavailable(.noMatchedAttacks)) }
        var ahead = 0, behind = 0
        var sumOurs = 0.0, sumTheirs = 0.0
        for key in shared {
            let (a, b) = (ours[key]!, theirs[key]!)
            switch Direction(difference: a - b, noiseMargin: noiseMargin) {
            case .ahead: ahead += 1
            case .behind: behind += 1
            case .tied: break
            }
            sumOurs += a
            sumTheirs += b
        }
        let count = Double(shared.count)
        let verdict: Verdict
        switch (ahead > 0, behind > 0) {
        case (true, false): verdict = .supported
        case (false, true): verdict = .contradicted
        case (true, true): verdict = .mixed
        case (false, false): verdict = .inconclusive
        }
        let statistics = RobustnessStatistics(
            matchedSettings: shared.count, meanAdversarialAccuracy: Paired(sumOurs / count, sumTheirs / count),
            ahead: ahead, behind: behind)
        return (verdict, .robustness(statistics))
    }

    /// Mean adversarial accuracy per seed over the attack settings every seed of both settings was
    /// evaluated under. A black-box attack whose source is the other setting counts as the same
    /// setting on both sides: "baseline → tanh" is matched with "tanh → baseline", i.e. each network
    /// is attacked with examples transferred from the other.
    /// `relativeToClean`: each accuracy divided by the model's own clean accuracy under that attack
    /// setting (the attack records carry it), so a model is not called robust for being more accurate.
    func robustnessSeeds(
        _ candidates: [Replicate], _ baselines: [Replicate], relativeToClean: Bool
    ) -> ReplicateComparison? {
        let candidateTables = candidates.map {
            attackTable($0.metrics, peers: baselines.map(\.name), relativeToClean: relativeToClean)
        }
        let baseTables = baselines.map {
            attackTable($0.metrics, peers: candidates.map(\.name), relativeToClean: relativeToClean)
        }
        var shared = Set(candidateTables.first?.keys ?? [:].keys)
        for table in candidateTables + baseTables { shared.formIntersection(table.keys) }
        guard !shared.isEmpty else { return nil }
        func values(_ replicates: [Replicate], _ tables: [[AttackTable.Key: Double]]) -> SeedValues {
            SeedValues(
                runs: replicates.map(\.name),
                values: tables.map { table in shared.map { table[$0]! }.reduce(0, +) / Double(shared.count) })
        }
        return ReplicateComparison(
            measure: relativeToClean ? .meanAdversarialFractionOfClean : .meanAdversarialAccuracy,
            values: Paired(values(candidates, candidateTables), values(baselines, baseTables)),
            threshold: nil, epochsToReach: nil, comparedEpochs: [])
    }

    /// Adversarial accuracy per attack setting, with a black-box source among `peers` renamed so the
    /// two directions of a transfer match.
    private func attackTable(
        _ metrics: RunMetrics, peers: [String], relativeToClean: Bool = false
    ) -> [AttackTable.Key: Double] {
        var table: [AttackTable.Key: Double] = [:]
        for (key, record) in AttackTable.latest(metrics.attacks) {
            let source = key.source.map { peers.contains($0) ? ClaimEvaluator.peerSource : $0 }
            let value: Double
            if relativeToClean {
                guard let clean = record.cleanAccuracy, clean > 0 else { continue }
                value = record.adversarialAccuracy / clean
            } else {
                value = record.adversarialAccuracy
            }
            table[AttackTable.Key(setting: key.setting, source: source, epsilonPixels: key.epsilonPixels)] = value
        }
        return table
    }

    /// Stands for "the other setting of the comparison" in a black-box attack's source.
    static let peerSource = "\u{0}peer"
}

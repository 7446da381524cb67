import DCNetMetrics
import Foundation

/// One line of a plot over seeds: at every x that all seeds have, the mean over the seeds and their
/// range (min–max).
struct SeedCurve: Sendable, Equatable {
    struct Point: Sendable, Equatable {
        let x: Double
        /// One value per seed, in seed order; non-finite if a seed's value is.
        let values: [Double]
        var mean: Double { values.reduce(0, +) / Double(values.count) }
        var minimum: Double { values.contains { !$0.isFinite } ? .nan : values.min()! }
        var maximum: Double { values.contains { !$0.isFinite } ? .nan : values.max()! }
    }

    let name: String
    /// The seeds averaged (curves with no point at all included).
    let seedCount: Int
    let points: [Point]

    /// `seeds`: x → value per seed. Only the x values every seed has are kept, so a seed that is
    /// still running shortens the curve instead of changing the mean halfway through it. A
    /// non-finite value makes the mean non-finite: the plot shows a gap there.
    init(name: String, seeds: [[Double: Double]]) {
        self.name = name
        seedCount = seeds.count
        var common = Set(seeds.first?.keys ?? [:].keys)
        for seed in seeds.dropFirst() { common.formIntersection(seed.keys) }
        points = common.sorted().map { x in Point(x: x, values: seeds.map { $0[x]! }) }
    }

    /// The mean line, with the min–max band when there are at least two seeds; values × `scale`.
    func series(scale: Double = 1) -> SVGPlot.Series {
        SVGPlot.Series(
            name: name, points: points.map { SVGPlot.Point(x: $0.x, y: $0.mean * scale) },
            band: seedCount < 2
                ? [] : points.map { SVGPlot.BandPoint(x: $0.x, lower: $0.minimum * scale, upper: $0.maximum * scale) })
    }

    /// Legend label of a setting: with several seeds, how many the line averages.
    static func label(_ setting: String, seeds: Int) -> String {
        seeds > 1 ? "\(setting) (\(seeds) seeds)" : setting
    }

    /// Said in the legend and under the plots when a line has a band.
    static let bandDescription = "band: min–max over seeds"
}

/// A group's learning curves: per setting, the mean over its seeds per epoch.
struct LearningCurves: Sendable, Equatable {
    /// True when every run has validation records: the accuracy curve is then the validation
    /// accuracy (the test set stays out of the picture), else the test accuracy.
    let validation: Bool
    /// Accuracy in percent per epoch.
    let accuracy: [SeedCurve]
    /// Training loss per epoch.
    let loss: [SeedCurve]

    /// `settings` in plot order; `replicates`: each setting's seeds with data (settings without any are
    /// left out). A setting with one seed is labelled with its run's name, as a run's own line.
    init(settings: [String], replicates: [String: [Replicate]]) {
        let present = settings.compactMap { setting -> (String, [Replicate])? in
            guard let seeds = replicates[setting], !seeds.isEmpty else { return nil }
            return (setting, seeds)
        }
        let summaries = present.flatMap { $0.1.map { RunSummary($0.metrics) } }
        validation = !summaries.isEmpty && summaries.allSatisfy(\.hasValidation)
        func curves(_ value: (EpochRecord) -> Double?) -> [SeedCurve] {
            present.map { setting, seeds in
                SeedCurve(
                    name: seeds.count == 1 ? seeds[0].name : SeedCurve.label(setting, seeds: seeds.count),
                    seeds: seeds.map { seed in
                        Dictionary(
                            seed.metrics.epochs.map { (Double($0.epoch), value($0) ?? .nan) },
                            uniquingKeysWith: { _, last in last })
                    })
            }
        }
        let validation = validation
        accuracy = curves { record in
            (validation ? record.validationAccuracy : record.testAccuracy).map { $0 * 100 }
        }
        loss = curves(\.trainLoss)
    }
}

/// Adversarial accuracy against ε for one attack method (FGSM, BIM-10, ...): per target setting its
/// white-box line, and one line per black-box source setting, each the mean over the seeds.
struct AttackCurves: Sendable, Equatable {
    /// An attack method regardless of mode.
    struct Method: Sendable, Hashable, Comparable {
        let method: String
        let steps: Int?

        var title: String { method.uppercased() + ((steps ?? 1) > 1 ? "-\(steps!)" : "") }
        var fileStem: String { "\(method)\((steps ?? 1) > 1 ? "-\(steps!)" : "")" }

        static func < (lhs: Method, rhs: Method) -> Bool {
            (lhs.method, lhs.steps ?? 0) < (rhs.method, rhs.steps ?? 0)
        }
    }

    struct Line: Sendable, Equatable {
        /// The attacked setting.
        let target: String
        /// The setting the examples were crafted on (black-box); nil: white-box.
        let source: String?
        /// Per seed: the target's run and, black-box, the run the examples were crafted on.
        let runs: [RunPair]
        /// Accuracy (fraction) against ε in pixels, ε = 0 being the clean accuracy.
        let curve: SeedCurve

        static func label(target: String, source: String?) -> String {
            source.map { "\(target) ← \($0)" } ?? "\(target), white-box"
        }
    }

    struct RunPair: Sendable, Equatable {
        let target: String
        let source: String?
    }

    let method: Method
    let lines: [Line]

    /// The series of the plot, accuracy in percent.
    var series: [SVGPlot.Series] { lines.map { $0.curve.series(scale: 100) } }

    /// One entry per method any run was attacked with, in method order. `settings` gives the line
    /// order and `replicates` each setting's seeds with data. A black-box record's source run is
    /// mapped to the setting it is a seed of (else its name without a `-s<N>` suffix); when a
    /// target run was attacked from several seeds of one source setting, the source with the same
    /// seed suffix is used (`tanh-s2` ← `baseline-s2`), else the first by name.
    static func build(settings: [String], replicates: [String: [Replicate]]) -> [AttackCurves] {
        var settingOf: [String: String] = [:]
        for setting in settings { for run in replicates[setting] ?? [] { settingOf[run.name] = setting } }
        func setting(ofRun run: String) -> String {
            settingOf[run] ?? seedSuffix(run).map { String(run.dropLast($0.count)) } ?? run
        }

        // Per target run: (method, source setting) → (source run, ε → accuracy, clean accuracy).
        struct Sample { var sourceRun: String?; var accuracy: [Double: Double]; var clean: Double? }
        struct LineKey: Hashable { let method: Method; let source: String? }
        var samples: [String: [LineKey: Sample]] = [:]
        var methods: Set<Method> = []
        for seeds in settings.compactMap({ replicates[$0] }) {
            for run in seeds where samples[run.name] == nil {
                var byLine: [LineKey: [String?: Sample]] = [:]
                // In key order, so that the clean accuracy is read from the smallest ε, on every run.
                for (key, record) in AttackTable.latest(run.metrics.attacks).sorted(by: { $0.key < $1.key }) {
                    let method = Method(method: key.setting.method, steps: key.setting.steps)
                    methods.insert(method)
                    let line = LineKey(method: method, source: key.source.map { setting(ofRun: $0) })
                    var sample = byLine[line]?[key.source] ?? Sample(sourceRun: key.source, accuracy: [:], clean: nil)
                    sample.accuracy[key.epsilonPixels] = record.adversarialAccuracy
                    sample.clean = sample.clean ?? record.cleanAccuracy
                    byLine[line, default: [:]][key.source] = sample
                }
                samples[run.name] = byLine.mapValues { bySource in
                    let suffix = seedSuffix(run.name)
                    let sources = bySource.keys.sorted { ($0 ?? "") < ($1 ?? "") }
                    let chosen = sources.first { $0.flatMap(seedSuffix) == suffix && suffix != nil } ?? sources[0]
                    return bySource[chosen]!
                }
            }
        }

        return methods.sorted().map { method in
            var lines: [Line] = []
            // White-box lines first, then each target's black-box sources in setting order.
            for whiteBox in [true, false] {
                for target in settings {
                    let seeds = replicates[target] ?? []
                    let keys = orderedUnique(
                        seeds.flatMap { samples[$0.name]?.keys.filter { $0.method == method } ?? [] }
                            .filter { ($0.source == nil) == whiteBox }
                    )
                    .sorted { lhs, rhs in
                        let order = { (s: String?) in settings.firstIndex(of: s ?? "") ?? settings.count }
                        return (order(lhs.source), lhs.source ?? "") < (order(rhs.source), rhs.source ?? "")
                    }
                    for key in keys {
                        let paired = seeds.compactMap { seed in samples[seed.name]?[key].map { (seed.name, $0) } }
                        let curves = paired.map { _, sample in
                            var points = sample.accuracy
                            // The clean accuracy is the ε = 0 point of the curve.
                            if points[0] == nil, let clean = sample.clean { points[0] = clean }
                            return points
                        }
                        let label = Line.label(target: target, source: key.source)
                        lines.append(
                            Line(
                                target: target, source: key.source,
                                runs: paired.map { RunPair(target: $0.0, source: $0.1.sourceRun) },
                                curve: SeedCurve(name: SeedCurve.label(label, seeds: paired.count), seeds: curves)))
                    }
                }
            }
            return AttackCurves(method: method, lines: lines)
        }
    }

    /// "-s2" of "tanh-s2"; nil when the name has no seed suffix.
    static func seedSuffix(_ run: String) -> String? {
        guard let dash = run.range(of: "-s", options: .backwards) else { return nil }
        let digits = run[dash.upperBound...]
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
        return String(run[dash.lowerBound...])
    }
}

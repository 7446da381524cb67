import DCNetData

/// A synthetic, learnable 4-class image set (the attack and CLI tests' toy classes): class k < 3 brightens colour
/// channel k, class 3 darkens every channel; the rest is pixel noise, wide enough that many pixels
/// sit at 0 or 255 so the pixel-range clipping is exercised.
public enum ToyImages {
    public static let classes = 4

    public static func dataset(count: Int, seed: UInt64) -> LabeledImages {
        var rng = Xoshiro256StarStar(seed: seed)
        var pixels = [UInt8](repeating: 0, count: count * LabeledImages.imageBytes)
        var labels = [UInt8](repeating: 0, count: count)
        for n in 0..<count {
            let label = n % classes
            labels[n] = UInt8(label)
            for c in 0..<3 {
                let shift = label == 3 ? -45 : (c == label ? 45 : 0)
                for i in 0..<1024 {
                    let v = 128 + shift + Int(rng.nextInt(below: 241)) - 120
                    pixels[n * LabeledImages.imageBytes + c * 1024 + i] = UInt8(min(max(v, 0), 255))
                }
            }
        }
        return LabeledImages(
            pixels: pixels, labels: labels, classCount: classes,
            classNames: (0..<classes).map { "class\($0)" })
    }
}

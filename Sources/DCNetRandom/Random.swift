#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, full-period 2^64 generator. Also the
/// standard way to seed xoshiro and to hash integers (`SplitMix64.mix`).
/// The state is a public stored property: save it and assign it back to resume exactly.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable, Codable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    @inlinable public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return SplitMix64.mix(state)
    }

    /// The SplitMix64 output function: a bijective 64-bit finaliser (good avalanche).
    @inlinable public static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Order-sensitive hash of three 64-bit words, e.g. `hash(seed, epoch, index)`.
    @inlinable public static func hash(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        var h: UInt64 = 0x6A09_E667_F3BC_C908
        h = mix(h ^ mix(a &+ 0x9E37_79B9_7F4A_7C15))
        h = mix(h ^ mix(b &+ 0x9E37_79B9_7F4A_7C15))
        h = mix(h ^ mix(c &+ 0x9E37_79B9_7F4A_7C15))
        return h
    }
}

/// xoshiro256** (Blackman & Vigna 2018): the general-purpose generator of the project
/// (data order, weight initialisation, attack starts).
///
/// State: four public words `s0...s3` (also `stateWords`), so it can be checkpointed and restored.
public struct Xoshiro256StarStar: RandomNumberGenerator, Sendable, Hashable, Codable {
    public var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Seeds the four state words from SplitMix64(seed), as recommended by the authors.
    public init(seed: UInt64) {
        var sm = SplitMix64(seed: seed)
        s0 = sm.next(); s1 = sm.next(); s2 = sm.next(); s3 = sm.next()
    }
    /// Restores a saved state (four words, not all zero).
    public init(state: [UInt64]) {
        precondition(state.count == 4 && state.contains { $0 != 0 }, "xoshiro256** state must be 4 words, not all zero")
        s0 = state[0]; s1 = state[1]; s2 = state[2]; s3 = state[3]
    }
    public var stateWords: [UInt64] {
        get { [s0, s1, s2, s3] }
        set { self = Xoshiro256StarStar(state: newValue) }
    }

    @inlinable static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 &- k)) }

    @inlinable public mutating func next() -> UInt64 {
        let result = Self.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = Self.rotl(s3, 45)
        return result
    }
}

/// The derived draws, written out here for every generator instead of taken from the standard
/// library, whose `random(in:using:)` algorithm may change between Swift versions: a seed then
/// gives the same data order, initial weights and test inputs with any compiler. (The normal
/// deviate also depends on the C library's `log` and `cos`, which agree in practice but are not
/// bit-for-bit specified.)
extension RandomNumberGenerator {
    /// Uniform integer in `0..<bound` (Lemire's multiply-shift with rejection: unbiased).
    @inlinable public mutating func next(below bound: UInt64) -> UInt64 {
        precondition(bound > 0)
        var m = next().multipliedFullWidth(by: bound)
        if m.low < bound {
            let threshold = (0 &- bound) % bound
            while m.low < threshold { m = next().multipliedFullWidth(by: bound) }
        }
        return m.high
    }
    @inlinable public mutating func nextInt(below bound: Int) -> Int { Int(next(below: UInt64(bound))) }

    /// Uniform double in [0, 1) from the top 53 bits of one draw.
    @inlinable public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1.0p-53 }
    /// Uniform float in [0, 1) from the top 24 bits of one draw.
    @inlinable public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1.0p-24 }
    /// Uniform float in `range` (its upper bound only through rounding), from one `nextFloat()`.
    @inlinable public mutating func nextFloat(in range: Range<Float>) -> Float {
        range.lowerBound + (range.upperBound - range.lowerBound) * nextFloat()
    }

    /// Standard normal N(0, 1) by Box–Muller: two draws per call and no cached spare, so the
    /// generator's state alone determines what follows.
    @inlinable public mutating func nextNormal() -> Double {
        let u1 = 1.0 - nextDouble()  // (0, 1]: log stays finite
        let u2 = nextDouble()
        return (-2.0 * log(u1)).squareRoot() * cos(2.0 * Double.pi * u2)
    }
}

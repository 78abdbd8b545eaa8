import Foundation

/// UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then random bits, so ids sort by
/// creation time and index well.
public enum EventID {
    public static func uuidV7(millis: Int64) -> UUID {
        var generator = SystemRandomNumberGenerator()
        return uuidV7(millis: millis, using: &generator)
    }

    public static func uuidV7(millis: Int64, using generator: inout some RandomNumberGenerator) -> UUID {
        let time = UInt64(max(0, millis)) & 0xFFFF_FFFF_FFFF
        let randA = UInt16.random(in: 0...0x0FFF, using: &generator)
        let randB = UInt64.random(in: 0...UInt64.max, using: &generator)
        let bytes: uuid_t = (
            UInt8(time >> 40 & 0xFF), UInt8(time >> 32 & 0xFF), UInt8(time >> 24 & 0xFF),
            UInt8(time >> 16 & 0xFF), UInt8(time >> 8 & 0xFF), UInt8(time & 0xFF),
            UInt8(0x70 | (randA >> 8)), UInt8(randA & 0xFF),
            UInt8(0x80 | (randB >> 56 & 0x3F)), UInt8(randB >> 48 & 0xFF),
            UInt8(randB >> 40 & 0xFF), UInt8(randB >> 32 & 0xFF), UInt8(randB >> 24 & 0xFF),
            UInt8(randB >> 16 & 0xFF), UInt8(randB >> 8 & 0xFF), UInt8(randB & 0xFF)
        )
        return UUID(uuid: bytes)
    }

    /// The millisecond timestamp carried by a UUIDv7.
    public static func millis(of uuid: UUID) -> Int64 {
        let b = uuid.uuid
        return Int64(b.0) << 40 | Int64(b.1) << 32 | Int64(b.2) << 24 | Int64(b.3) << 16 | Int64(b.4) << 8 | Int64(b.5)
    }
}

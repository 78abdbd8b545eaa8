import Contracts
import Foundation
import Testing

@Suite struct TimestampTests {
    @Test(arguments: [
        ("1970-01-01T00:00:00Z", Int64(0)),
        ("2026-11-23T10:00:00Z", 1_795_428_000_000),
        ("2026-11-23t10:00:00z", 1_795_428_000_000),
        ("2026-11-23 10:00:00Z", 1_795_428_000_000),
        ("2026-11-23T10:00:00+00:00", 1_795_428_000_000),
        ("2026-11-23T10:00:00-00:00", 1_795_428_000_000),
        ("2026-11-23T11:00:00+01:00", 1_795_428_000_000),
        ("2026-11-23T10:00:00+01:00", 1_795_424_400_000),
        ("2026-11-23T05:00:00-05:00", 1_795_428_000_000),
        ("2026-03-02T00:00:00+05:30", 1_772_389_800_000),
        ("2024-02-29T12:34:56.789Z", 1_709_210_096_789),
        ("2024-02-29T12:34:56.7Z", 1_709_210_096_700),
        ("2024-02-29T12:34:56.78Z", 1_709_210_096_780),
        ("2024-02-29T12:34:56.7891Z", 1_709_210_096_789),
        ("2024-02-29T12:34:56.789999Z", 1_709_210_096_789),
        ("2024-02-29T12:34:56.123456789+00:00", 1_709_210_096_123),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2016-12-31T23:59:60Z", 1_483_228_799_000),
        ("2000-02-29T00:00:00Z", 951_782_400_000),
    ])
    func parsesRFC3339(text: String, millis: Int64) {
        #expect(Timestamp.parseRFC3339(text) == millis)
    }

    @Test(arguments: [
        "", "2026-11-23", "2026-11-23T10:00:00", "2026-11-23T10:00Z", "2026-11-23T10:00:00.Z",
        "2026-13-01T00:00:00Z", "2026-00-01T00:00:00Z", "2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
        "2026-04-31T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T10:60:00Z", "2026-11-23T10:00:61Z",
        "2026-11-23T10:00:00+1:00", "2026-11-23T10:00:00+0100", "2026-11-23T10:00:00+24:00",
        "2026-11-23T10:00:00Zjunk", "26-11-23T10:00:00Z", "2026/11/23T10:00:00Z", "2026-11-23X10:00:00Z",
        " 2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z ", "1700000000000",
    ])
    func refusesInvalidRFC3339(text: String) {
        #expect(Timestamp.parseRFC3339(text) == nil)
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1_795_428_000_000, "2026-11-23T10:00:00.000Z"),
        (1_709_210_096_789, "2024-02-29T12:34:56.789Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (-86_400_000, "1969-12-31T00:00:00.000Z"),
        (-86_400_001, "1969-12-30T23:59:59.999Z"),
        (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
    ])
    func formatsRFC3339(millis: Int64, text: String) {
        #expect(Timestamp.formatRFC3339(millis) == text)
        #expect(Timestamp.parseRFC3339(text) == millis)
    }

    @Test func formattingAgreesWithFoundationAcrossTheCalendar() {
        // Steps of 37 days and an odd number of seconds land on every time of day and month.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var millis: Int64 = -2_208_988_800_000 // 1900-01-01
        while millis < 4_102_444_800_000 { // 2100-01-01
            let text = Timestamp.formatRFC3339(millis)
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(millis / 1000)))
            #expect(text == expected.replacingOccurrences(of: "Z", with: ".000Z"))
            #expect(Timestamp.parseRFC3339(text) == millis)
            millis += 86_400_000 * 37 + 3_607_000
        }
    }

    @Test(arguments: [
        (Int64(0), "1970-01-01"),
        (1_795_428_000_000, "2026-11-23"),
        (1_795_478_399_999, "2026-11-23"),
        (1_795_478_400_000, "2026-11-24"),
        (-1, "1969-12-31"),
        (951_782_400_000, "2000-02-29"),
    ])
    func utcDate(millis: Int64, date: String) {
        #expect(Timestamp.utcDate(millis) == date)
    }

    @Test(arguments: [
        ("1970-01-01", 0 as Int?), ("1970-01-02", 1), ("1969-12-31", -1), ("2026-01-01", 20454),
        ("2024-02-29", 19782), ("2000-03-01", 11017),
        ("2026-02-29", nil), ("2026-02-30", nil), ("2026-13-01", nil), ("2026-00-10", nil), ("2026-1-01", nil),
        ("2026-01-1", nil), ("26-01-01", nil), ("2026-01-01T00:00:00Z", nil), ("2026/01/01", nil), ("", nil),
        ("2026-01", nil), ("2026-01-01-01", nil), ("abcd-01-01", nil),
    ])
    func parseDate(text: String, days: Int?) {
        #expect(Timestamp.parseDate(text) == days)
    }

    @Test func parseDateAgreesWithUTCDate() throws {
        for days in stride(from: -1000, through: 30000, by: 7) {
            let text = Timestamp.utcDate(Int64(days) * 86_400_000)
            #expect(Timestamp.parseDate(text) == days)
        }
    }
}

import Contracts
import Foundation
import Testing

/// A generator that always returns the same word, to push the random fields to their extremes.
struct ConstantGenerator: RandomNumberGenerator {
    var word: UInt64
    mutating func next() -> UInt64 { word }
}

@Suite struct EventIDTests {
    @Test(arguments: [Int64(0), 1, 1_795_428_000_000, 1_709_210_096_789, 0xFFFF_FFFF_FFFF])
    func carriesVersionVariantAndMillis(millis: Int64) {
        for _ in 0..<50 {
            let uuid = EventID.uuidV7(millis: millis)
            let bytes = uuid.uuid
            #expect(bytes.6 >> 4 == 0x7, "version nibble")
            #expect(bytes.8 >> 6 == 0b10, "RFC 4122/9562 variant")
            #expect(EventID.millis(of: uuid) == millis)
            let text = uuid.uuidString
            #expect(Array(text)[14] == "7")
            #expect("89AB".contains(Array(text)[19]))
        }
    }

    @Test(arguments: [UInt64.min, UInt64.max, 0x5555_5555_5555_5555])
    func randomBitsNeverDisturbVersionOrVariant(word: UInt64) {
        var generator = ConstantGenerator(word: word)
        let uuid = EventID.uuidV7(millis: 1_795_428_000_000, using: &generator)
        #expect(uuid.uuid.6 >> 4 == 0x7)
        #expect(uuid.uuid.8 >> 6 == 0b10)
        #expect(EventID.millis(of: uuid) == 1_795_428_000_000)
    }

    @Test func timeIsBigEndianInTheFirstSixBytes() {
        var generator = SeededGenerator(seed: 1)
        let uuid = EventID.uuidV7(millis: 0x0102_0304_0506, using: &generator)
        #expect(uuid.uuidString.hasPrefix("01020304-0506-7"))
    }

    @Test func negativeMillisAreClampedToTheEpoch() {
        #expect(EventID.millis(of: EventID.uuidV7(millis: -5)) == 0)
    }

    @Test func sameGeneratorStateGivesTheSameID() {
        var first = SeededGenerator(seed: 42)
        var second = SeededGenerator(seed: 42)
        #expect(EventID.uuidV7(millis: 1000, using: &first) == EventID.uuidV7(millis: 1000, using: &second))
        #expect(EventID.uuidV7(millis: 1000, using: &first) != EventID.uuidV7(millis: 1000))
    }

    @Test func idsAreUniqueAndSortByTime() {
        var generator = SeededGenerator(seed: 7)
        let times: [Int64] = [1_795_428_000_000, 1_795_428_000_001, 1_795_428_000_255, 1_795_428_000_256, 1_795_428_065_536, 1_800_000_000_000]
        var ids: [UUID] = []
        for millis in times {
            for _ in 0..<20 { ids.append(EventID.uuidV7(millis: millis, using: &generator)) }
        }
        #expect(Set(ids).count == ids.count)
        let sortedByText = ids.sorted { $0.uuidString < $1.uuidString }
        #expect(sortedByText.map { EventID.millis(of: $0) } == times.flatMap { Array(repeating: $0, count: 20) })
        let sortedByLowercase = ids.sorted { $0.uuidString.lowercased() < $1.uuidString.lowercased() }
        #expect(sortedByLowercase == sortedByText)
    }
}

@Suite struct ActionTests {
    @Test(arguments: [
        ("view_item", Action.viewItem), ("Viewed Product", .viewItem), ("view-product", .viewItem), ("PRODUCT_VIEWED", .viewItem),
        ("add_to_cart", .addToCart), ("Added to Cart", .addToCart), ("Product Added", .addToCart), ("add-to-cart", .addToCart),
        ("remove_from_cart", .removeFromCart), ("Removed From Cart", .removeFromCart), ("product_removed", .removeFromCart),
        ("begin_checkout", .beginCheckout), ("Started Checkout", .beginCheckout), ("Checkout Started", .beginCheckout),
        ("add_payment_info", .addPaymentInfo), ("Payment Info Entered", .addPaymentInfo),
        ("purchase", .purchase), ("Purchase", .purchase), ("Completed Checkout", .purchase), ("Order Completed", .purchase),
        ("order-completed", .purchase),
        ("refund", .refund), ("Refunded", .refund), ("Order Refunded", .refund),
    ])
    func recognisesNamesAndAliases(name: String, action: Action) {
        #expect(Action(eventName: name) == action)
    }

    @Test(arguments: ["", "pageview", "signup", "buy", "purchases", "order completed!", "orderCompleted", " purchase", "add to  cart"])
    func otherNamesAreNoAction(name: String) {
        #expect(Action(eventName: name) == nil)
    }

    @Test func everyActionIsItsOwnAlias() {
        for action in Action.allCases {
            #expect(Action(eventName: action.rawValue) == action)
        }
    }
}

import Contracts
import Foundation
@testable import Kafka
@testable import Sessionizer
import Testing

/// The Sessionizer's hot-path helpers against the references they replaced: page URLs read
/// from bytes as character by character, and the checkpoint writer writing the document
/// JSONEncoder wrote. (The event messages' codec is tested in ContractsTests.)
@Suite("Sessionizer hot-path coding")
struct HotPathCodingTests {
    static let contexts: [SourceContext] = [
        .direct, .unattributed,
        SourceContext(source: "google", medium: "cpc", campaign: "spring \"sale\"", term: "mugs", content: "ad-1", clickId: "Cj0/x",
                      referrer: "https://www.google.com/search?q=a\tb", referrerDomain: "www.google.com", landingPage: "/", channel: "Paid Search"),
    ]

    static let urls: [String] = [
        "https://shop.example/", "https://Shop.Example:8443/a/b?x=1#top", "http://user:pw@WWW.Host.com/p?utm_source=News&UTM_Medium=e+mail&utm_campaign=%41%2B%zz%4",
        "https://shop.example?gclid=abc&gclid=def&&=x&empty=&flag&%00a=%00b&a%3Db=c=d&q=%+5&r=%-0&s=%-1",
        "shop.example/path?x=1", "shop.example", "localhost/x", "/relative/path?utm_source=a", "?utm_source=a", "#frag?x=1",
        "android-app://com.google.android.gm", "android-app://com.google.android.gm/", "a b.c/d", "x://", "://", ":", "a",
        "https://h/?#", "https://h?", "https://@:/", "https://a@b@c:1:2/", "mailto:x@y.z", "HTTPS://EXAMPLE.COM/PATH?A=B",
        "https://ex.com/%C3%A9?%C3%89=%C3%A9", "https://ex.com/?Ä=1", "https://ex.com/é?utm_source=é", "https://ex.com/\r\n?x=1",
        "https://ex.com/\r\n?a\r\n=1", "https://ex.com/?/́x=1", "https://ex.com:/́/p", "https://ex.com/?a=1\u{301}&b=2",
    ]

    @Test(arguments: urls)
    func pageURLsReadFromBytesAsCharacterByCharacter(text: String) {
        let general = PageURL(general: text)
        if let ascii = PageURL(ascii: text) { #expect(ascii == general) }
        #expect(PageURL(text) == general)
    }

    static func state(sessions: Int) -> VisitorState {
        VisitorState(personId: "user \"1\"/é", sessions: (0..<sessions).map { index in
            SessionState(id: UUID(), startedAt: Int64(index) * 1_000, lastEventAt: Int64(index) * 1_000 + 5, context: contexts[index % contexts.count],
                         campaignKey: index.isMultiple(of: 2) ? nil : "google\u{1F}cpc\u{1F}\u{1F}x")
        })
    }

    @Test(arguments: [0, 1, 3, 8])
    func theCheckpointIsTheDocumentJSONEncoderWrote(sessions: Int) throws {
        let state = Self.state(sessions: sessions)
        let json = state.checkpointJSON()
        #expect(try MessageCoding.decode(VisitorState.self, from: Array(json.utf8)) == state)
        #expect(try JSONValue.parse(json) == JSONValue.parse(Array(try JSONEncoder().encode(state))))
    }
}

/// A raw event whose time lies outside what the Collector accepts is dead-lettered, not
/// sessionized (found by fuzzing: it became an identity link the Aggregator could not store).
@Suite struct RawEventRangeTests {
    @Test func anEventTimeOutsideTheAcceptedRangeIsDeadLettered() throws {
        func message(occurredAt: Int64) -> KafkaMessage {
            let event = RawEvent(eventUUID: UUID(), site: "shop", type: .event, name: "x", anonymousId: "a", userId: "u",
                                 occurredAt: occurredAt, receivedAt: 1_795_428_000_000, origin: .server)
            return KafkaMessage(topic: Topics.raw, partition: 0, offset: 0, key: nil, value: MessageCoding.encode(event), timestamp: nil)
        }
        let lane = try SessionizerProcessor.decode([message(occurredAt: -4_611_686_018_427_387_903), message(occurredAt: 1_795_428_000_000)])
        #expect(lane.events.count == 1)
        #expect(lane.deadLetters.count == 1)
    }
}

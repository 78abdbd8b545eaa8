import Contracts
import Foundation
@testable import Sessionizer
import Testing

enum SessionFixture {
    static let minute: Int64 = 60_000
    static let hour: Int64 = 60 * minute
    static let day: Int64 = 24 * hour
    static let start: Int64 = 1_795_428_000_000

    /// A distinct, readable event id per number.
    static func uuid(_ number: Int) -> UUID {
        UUID(uuidString: String(format: "00000000-0000-7000-8000-%012d", number))!
    }

    static func event(
        _ number: Int, at offset: Int64, type: EventType = .pageview, origin: Origin = .browser,
        url: String? = "https://shop.example/", referrer: String? = nil,
        anonymousId: String? = "anon-1", userId: String? = nil
    ) -> RawEvent {
        RawEvent(
            eventUUID: uuid(number), site: "shop.example", type: type, name: type == .event ? "purchase" : type.rawValue,
            anonymousId: anonymousId, userId: userId, occurredAt: start + offset, receivedAt: start + offset,
            url: url, referrer: referrer, origin: origin)
    }

    /// Runs events through the Sessionizer in order, threading the state, as the service does.
    static func run(_ events: [RawEvent], rules: SessionRules = SessionRules(), state: VisitorState? = nil) -> (outputs: [EnrichedEvent], state: VisitorState?) {
        var state = state
        var outputs: [EnrichedEvent] = []
        for event in events {
            let (enriched, next) = Sessionization.process(event, state: state, rules: rules)
            outputs.append(enriched)
            state = next
        }
        return (outputs, state)
    }
}

@Suite struct SessionizationTests {
    typealias F = SessionFixture

    @Test func firstEventStartsASessionNamedAfterIt() {
        let (outputs, state) = F.run([F.event(1, at: 0, referrer: "https://www.google.com/")])
        let first = outputs[0]
        #expect(first.sessionId == F.uuid(1))
        #expect(first.sessionStartedAt == F.start)
        #expect(first.personId == "anon-1")
        #expect(first.context.channel == "Organic Search")
        #expect(first.event == F.event(1, at: 0, referrer: "https://www.google.com/"))
        #expect(state?.sessionId == F.uuid(1))
        #expect(state?.lastEventAt == F.start)
        #expect(state?.campaignKey == nil)
    }

    @Test func laterEventsKeepTheSessionAndItsFirstContext() {
        let (outputs, state) = F.run([
            F.event(1, at: 0, url: "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=may"),
            F.event(2, at: 5 * F.minute, url: "https://shop.example/cart", referrer: "https://shop.example/"),
            F.event(3, at: 20 * F.minute, url: "https://shop.example/", referrer: "https://www.google.com/"),
            F.event(4, at: 45 * F.minute, type: .event, url: "https://shop.example/thanks"),
        ])
        #expect(outputs.map(\.sessionId) == Array(repeating: F.uuid(1), count: 4))
        #expect(outputs.map(\.sessionStartedAt) == Array(repeating: F.start, count: 4))
        #expect(outputs.map(\.context.source) == Array(repeating: "newsletter", count: 4))
        #expect(outputs.map(\.context.landingPage) == Array(repeating: "/", count: 4))
        #expect(state?.lastEventAt == F.start + 45 * F.minute)
    }

    @Test(arguments: [
        (30 * SessionFixture.minute, false),
        (30 * SessionFixture.minute + 1, true),
        (29 * SessionFixture.minute, false),
        (3 * SessionFixture.hour, true),
    ])
    func inactivityTimeoutStartsANewSession(gap: Int64, isNew: Bool) {
        let (outputs, state) = F.run([
            F.event(1, at: 0, referrer: "https://www.google.com/"),
            F.event(2, at: 10 * F.minute),
            F.event(3, at: 10 * F.minute + gap, referrer: "https://t.co/x"),
        ])
        #expect(outputs[1].sessionId == F.uuid(1))
        #expect(outputs[2].sessionId == (isNew ? F.uuid(3) : F.uuid(1)))
        #expect(outputs[2].sessionStartedAt == (isNew ? F.start + 10 * F.minute + gap : F.start))
        #expect(outputs[2].context.source == (isNew ? "twitter" : "google"))
        #expect(state?.sessionId == outputs[2].sessionId)
    }

    @Test func customInactivityTimeout() {
        var rules = SessionRules()
        rules.inactivityTimeout = 5 * F.minute
        let (outputs, _) = F.run([F.event(1, at: 0), F.event(2, at: 5 * F.minute), F.event(3, at: 10 * F.minute + 1)], rules: rules)
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(3)])
    }

    @Test func maximumLengthStartsANewSession() {
        // A pageview every 20 minutes never times out, but the session may last at most 24 hours.
        let events = (0...80).map { F.event($0 + 1, at: Int64($0) * 20 * F.minute) }
        let (outputs, _) = F.run(events)
        // Event 73 (index 72) is exactly 24 h after the start: still inside; index 73 is past it.
        #expect(outputs[0...72].allSatisfy { $0.sessionId == F.uuid(1) })
        #expect(outputs[73].sessionId == F.uuid(74))
        #expect(outputs[73].sessionStartedAt == F.start + 73 * 20 * F.minute)
        #expect(outputs[74...].allSatisfy { $0.sessionId == F.uuid(74) })
    }

    @Test func customMaximumLength() {
        var rules = SessionRules()
        rules.maximumLength = 30 * F.minute
        let (outputs, _) = F.run([F.event(1, at: 0), F.event(2, at: 20 * F.minute), F.event(3, at: 40 * F.minute)], rules: rules)
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(3)])
    }

    @Test(arguments: [
        // (first page, second page 5 minutes later, starts a new session?)
        ("https://shop.example/?utm_source=google&utm_campaign=a", "https://shop.example/?utm_source=google&utm_campaign=b", true),
        ("https://shop.example/?utm_source=google&utm_campaign=a", "https://shop.example/p?utm_source=facebook&utm_campaign=a", true),
        ("https://shop.example/?utm_source=google&utm_medium=cpc", "https://shop.example/?utm_source=google&utm_medium=email", true),
        ("https://shop.example/?gclid=first", "https://shop.example/?gclid=second", true),
        ("https://shop.example/", "https://shop.example/?utm_source=newsletter", true),
        ("https://shop.example/", "https://shop.example/?fbclid=x", true),
        // The same campaign again (a reload, a second click on the same link) is the same visit.
        ("https://shop.example/?utm_source=google&utm_campaign=a", "https://shop.example/?utm_source=google&utm_campaign=a", false),
        ("https://shop.example/?utm_campaign=a&utm_source=google", "https://shop.example/other?utm_source=google&utm_campaign=a&utm_term=x", false),
        ("https://shop.example/?gclid=same", "https://shop.example/p?gclid=same", false),
        // Pages without campaign parameters never end a campaign's session.
        ("https://shop.example/?utm_source=google&utm_campaign=a", "https://shop.example/cart", false),
        ("https://shop.example/", "https://shop.example/cart?ref=x", false),
    ])
    func campaignChangeStartsANewSession(firstURL: String, secondURL: String, isNew: Bool) {
        let (outputs, _) = F.run([F.event(1, at: 0, url: firstURL), F.event(2, at: 5 * F.minute, url: secondURL)])
        #expect(outputs[1].sessionId == (isNew ? F.uuid(2) : F.uuid(1)))
        if isNew {
            #expect(outputs[1].context == SourceClassification.context(page: PageURL(secondURL), referrer: nil))
            #expect(outputs[1].sessionStartedAt == F.start + 5 * F.minute)
        } else {
            #expect(outputs[1].context == outputs[0].context)
        }
    }

    @Test func campaignSessionContextComesFromTheNewCampaign() {
        let (outputs, state) = F.run([
            F.event(1, at: 0, url: "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=a"),
            F.event(2, at: F.minute, url: "https://shop.example/sale?utm_source=newsletter&utm_medium=email&utm_campaign=b"),
        ])
        #expect(outputs[1].context.source == "newsletter")
        #expect(outputs[1].context.campaign == "b")
        #expect(outputs[1].context.landingPage == "/sale")
        #expect(outputs[1].sessionStartedAt == F.start + F.minute)
        #expect(state?.campaignKey != nil)
        #expect(state?.campaignKey == Sessionization.campaignKey(PageURL("https://x/?utm_campaign=b&utm_medium=email&utm_source=newsletter")))
    }

    @Test func referrerChangeAloneDoesNotStartASession() {
        let (outputs, _) = F.run([
            F.event(1, at: 0, referrer: "https://www.google.com/"),
            F.event(2, at: 10 * F.minute, referrer: "https://www.facebook.com/"),
        ])
        #expect(outputs[1].sessionId == F.uuid(1))
        #expect(outputs[1].context.source == "google")
    }

    @Test func lateEventJoinsWithoutMovingTheClockBack() {
        let (outputs, state) = F.run([F.event(1, at: 0), F.event(2, at: 20 * F.minute), F.event(3, at: 5 * F.minute)])
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(1)])
        #expect(state?.lastEventAt == F.start + 20 * F.minute)
        // 45 minutes after the late event's time but only 25 after the latest: still the same session.
        let (next, _) = Sessionization.process(F.event(4, at: 45 * F.minute), state: state, rules: SessionRules())
        #expect(next.sessionId == F.uuid(1))
    }

    // MARK: Server events and identifies

    @Test(arguments: [SessionFixture.minute, 29 * SessionFixture.day, 30 * SessionFixture.day])
    func serverEventInheritsTheLatestSessionWithinLookback(delay: Int64) {
        let browser = F.event(1, at: 0, url: "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=may")
        let (first, state) = Sessionization.process(browser, state: nil, rules: SessionRules())
        let server = F.event(2, at: delay, type: .event, origin: .server, url: nil, anonymousId: nil, userId: "user-9")
        let (enriched, next) = Sessionization.process(server, state: state, rules: SessionRules())
        #expect(enriched.sessionId == F.uuid(1))
        #expect(enriched.sessionStartedAt == F.start)
        #expect(enriched.context == first.context)
        #expect(enriched.context.channel == "Email")
        #expect(enriched.personId == "user-9")
        #expect(next.personId == "user-9")
        // A server event does not extend the browser session.
        #expect(next.lastEventAt == F.start)
        #expect(next.sessionId == F.uuid(1))
    }

    @Test func serverEventBeyondLookbackIsUnattributedButKeepsHistory() {
        let (_, state) = Sessionization.process(F.event(1, at: 0, referrer: "https://www.google.com/"), state: nil, rules: SessionRules())
        let server = F.event(2, at: 30 * F.day + 1, type: .event, origin: .server, url: nil, userId: "user-9")
        let (enriched, next) = Sessionization.process(server, state: state, rules: SessionRules())
        #expect(enriched.context == .unattributed)
        #expect(enriched.context.source == "(unattributed)")
        #expect(enriched.sessionId == F.uuid(2))
        #expect(enriched.sessionStartedAt == F.start + 30 * F.day + 1)
        #expect(enriched.personId == "user-9")
        var expected = state
        expected.personId = "user-9"
        #expect(next == expected)
    }

    @Test func customLookback() {
        var rules = SessionRules()
        rules.lookback = F.hour
        let (_, state) = Sessionization.process(F.event(1, at: 0), state: nil, rules: rules)
        let inside = Sessionization.process(F.event(2, at: F.hour, origin: .server), state: state, rules: rules).0
        let outside = Sessionization.process(F.event(3, at: F.hour + 1, origin: .server), state: state, rules: rules).0
        #expect(inside.sessionId == F.uuid(1))
        #expect(outside.sessionId == F.uuid(3))
        #expect(outside.context == .unattributed)
    }

    @Test func serverEventWithoutStateIsUnattributed() {
        let server = F.event(1, at: 0, type: .event, origin: .server, url: "https://shop.example/?utm_source=google&utm_medium=cpc",
                             referrer: "https://www.google.com/", anonymousId: nil, userId: "user-1")
        let (enriched, state) = Sessionization.process(server, state: nil, rules: SessionRules())
        #expect(enriched.context == .unattributed)
        #expect(enriched.context.channel == "Unassigned")
        #expect(enriched.sessionId == F.uuid(1))
        #expect(enriched.personId == "user-1")
        #expect(state.context == .unattributed)

        // The visitor's next browser event starts a real session at once, inside the timeout.
        let (browser, next) = Sessionization.process(F.event(2, at: F.minute, referrer: "https://t.co/x", anonymousId: "anon-1"), state: state, rules: SessionRules())
        #expect(browser.sessionId == F.uuid(2))
        #expect(browser.context.source == "twitter")
        #expect(browser.personId == "user-1")
        #expect(next.context.source == "twitter")
    }

    @Test func serverEventNeverStartsASessionFromItsOwnURL() {
        let (_, state) = Sessionization.process(F.event(1, at: 0, referrer: "https://www.google.com/"), state: nil, rules: SessionRules())
        let server = F.event(2, at: 2 * F.hour, type: .event, origin: .server, url: "https://shop.example/?utm_source=x&utm_campaign=y")
        let (enriched, next) = Sessionization.process(server, state: state, rules: SessionRules())
        #expect(enriched.sessionId == F.uuid(1))
        #expect(enriched.context.source == "google")
        #expect(next.campaignKey == nil)
    }

    @Test func identifyWithoutStateDoesNotStartASession() {
        let (outputs, state) = F.run([
            F.event(1, at: 0, type: .identify, userId: "user-1"),
            F.event(2, at: F.minute, referrer: "https://www.google.com/"),
            F.event(3, at: 2 * F.minute),
        ])
        #expect(outputs[0].context == .unattributed)
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(2), F.uuid(2)])
        #expect(outputs[1].context.source == "google")
        #expect(outputs[1].sessionStartedAt == F.start + F.minute)
        #expect(outputs.map(\.personId) == ["user-1", "user-1", "user-1"])
        #expect(state?.sessionId == F.uuid(2))
    }

    @Test func identifyJoinsTheLatestSessionWithoutExtendingIt() {
        let (outputs, _) = F.run([
            F.event(1, at: 0, referrer: "https://www.google.com/"),
            F.event(2, at: 2 * F.hour, type: .identify, url: "https://shop.example/?utm_source=x", userId: "user-1"),
            F.event(3, at: 2 * F.hour + F.minute),
        ])
        #expect(outputs[1].sessionId == F.uuid(1))
        #expect(outputs[1].context.source == "google")
        // The identify did not keep the session alive: the next pageview starts a new one.
        #expect(outputs[2].sessionId == F.uuid(3))
        #expect(outputs.map(\.personId) == ["anon-1", "user-1", "user-1"])
    }

    // MARK: People

    @Test func personIsTheUserOnceKnown() {
        let (outputs, state) = F.run([
            F.event(1, at: 0, anonymousId: "anon-1"),
            F.event(2, at: F.minute, type: .event, anonymousId: "anon-1", userId: "user-1"),
            F.event(3, at: 2 * F.minute, anonymousId: "anon-1"),
            F.event(4, at: 5 * F.hour, anonymousId: "anon-1"),
            F.event(5, at: 5 * F.hour + F.minute, anonymousId: "anon-1", userId: "user-2"),
        ])
        #expect(outputs.map(\.personId) == ["anon-1", "user-1", "user-1", "user-1", "user-2"])
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(1), F.uuid(4), F.uuid(4)])
        #expect(state?.personId == "user-2")
    }

    @Test func anonymousEventWithoutIdsIsItsOwnPerson() {
        let (enriched, _) = Sessionization.process(F.event(7, at: 0, anonymousId: nil), state: nil, rules: SessionRules())
        #expect(enriched.personId == F.uuid(7).uuidString)
    }

    @Test func replayingTheSameEventsGivesTheSameOutput() throws {
        let events = [
            F.event(1, at: 0, url: "https://shop.example/?gclid=a"),
            F.event(2, at: F.minute, type: .identify, userId: "u"),
            F.event(3, at: 40 * F.minute),
            F.event(4, at: 41 * F.minute, type: .event, origin: .server),
            F.event(5, at: 50 * F.minute, url: "https://shop.example/?utm_source=n&utm_campaign=c"),
        ]
        let first = F.run(events)
        let second = F.run(events)
        #expect(first.outputs == second.outputs)
        #expect(first.state == second.state)
        #expect(first.outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(3), F.uuid(3), F.uuid(5)])

        // A restart in the middle, from the persisted state, continues exactly where it stopped.
        let head = F.run(Array(events[..<3]))
        let stored = try JSONDecoder().decode(VisitorState.self, from: JSONEncoder().encode(try #require(head.state)))
        let tail = F.run(Array(events[3...]), state: stored)
        #expect(head.outputs + tail.outputs == first.outputs)
    }

    @Test func visitorStateIsStoredWithSnakeCaseKeys() throws {
        let (_, state) = Sessionization.process(F.event(1, at: 0, url: "https://shop.example/?utm_source=a"), state: nil, rules: SessionRules())
        let json = try JSONValue.parse(JSONEncoder().encode(state))
        #expect(Set(try #require(json.objectValue).keys) == ["person_id", "session_id", "session_started_at", "last_event_at", "context", "campaign_key"])
        #expect(try JSONDecoder().decode(VisitorState.self, from: JSONEncoder().encode(state)) == state)
    }
}

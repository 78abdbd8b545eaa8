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
        anonymousId: String? = "anon-1", userId: String? = nil, site: String = "shop.example"
    ) -> RawEvent {
        RawEvent(
            eventUUID: uuid(number), site: site, type: type, name: type == .event ? "purchase" : type.rawValue,
            anonymousId: anonymousId, userId: userId, occurredAt: start + offset, receivedAt: start + offset,
            url: url, referrer: referrer, origin: origin)
    }

    /// Runs events through the Sessionizer in order, threading the state, as the service does.
    static func run(_ events: [RawEvent], rules: SessionRules = SessionRules(), state: VisitorState? = nil)
        -> (outputs: [EnrichedEvent], state: VisitorState?, links: [IdentityLink]) {
        var state = state
        var outputs: [EnrichedEvent] = []
        var links: [IdentityLink] = []
        for event in events {
            let result = Sessionization.process(event, state: state, rules: rules)
            outputs.append(result.enriched)
            links += result.link.map { [$0] } ?? []
            state = result.state
        }
        return (outputs, state, links)
    }
}

@Suite struct SessionizationTests {
    typealias F = SessionFixture

    static let google = "https://www.google.com/"

    @Test func firstEventStartsASessionNamedAfterIt() {
        let (outputs, state, links) = F.run([F.event(1, at: 0, referrer: Self.google)])
        let first = outputs[0]
        #expect(first.sessionId == F.uuid(1))
        #expect(first.sessionStartedAt == F.start)
        #expect(first.personId == "anon-1")
        #expect(first.context.channel == "Organic Search")
        #expect(first.event == F.event(1, at: 0, referrer: Self.google))
        #expect(state?.latest?.id == F.uuid(1))
        #expect(state?.latest?.lastEventAt == F.start)
        #expect(state?.latest?.campaignKey == nil)
        #expect(links.isEmpty)
    }

    @Test func laterEventsKeepTheSessionAndItsFirstContext() {
        let (outputs, state, _) = F.run([
            F.event(1, at: 0, url: "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=may"),
            F.event(2, at: 5 * F.minute, url: "https://shop.example/cart", referrer: "https://shop.example/"),
            F.event(3, at: 20 * F.minute, url: "https://shop.example/", referrer: Self.google),
            F.event(4, at: 45 * F.minute, type: .event, url: "https://shop.example/thanks"),
        ])
        #expect(outputs.map(\.sessionId) == Array(repeating: F.uuid(1), count: 4))
        #expect(outputs.map(\.sessionStartedAt) == Array(repeating: F.start, count: 4))
        #expect(outputs.map(\.context.source) == Array(repeating: "newsletter", count: 4))
        #expect(outputs.map(\.context.landingPage) == Array(repeating: "/", count: 4))
        #expect(state?.latest?.lastEventAt == F.start + 45 * F.minute)
        #expect(state?.sessions.count == 1)
    }

    @Test(arguments: [
        (30 * SessionFixture.minute, false),
        (30 * SessionFixture.minute + 1, true),
        (29 * SessionFixture.minute, false),
        (3 * SessionFixture.hour, true),
    ])
    func inactivityTimeoutStartsANewSession(gap: Int64, isNew: Bool) {
        let (outputs, state, _) = F.run([
            F.event(1, at: 0, referrer: Self.google),
            F.event(2, at: 10 * F.minute),
            F.event(3, at: 10 * F.minute + gap, referrer: "https://t.co/x"),
        ])
        #expect(outputs[1].sessionId == F.uuid(1))
        #expect(outputs[2].sessionId == (isNew ? F.uuid(3) : F.uuid(1)))
        #expect(outputs[2].sessionStartedAt == (isNew ? F.start + 10 * F.minute + gap : F.start))
        #expect(outputs[2].context.source == (isNew ? "twitter" : "google"))
        #expect(state?.latest?.id == outputs[2].sessionId)
        #expect(state?.sessions.count == (isNew ? 2 : 1))
    }

    @Test func customInactivityTimeout() {
        var rules = SessionRules()
        rules.inactivityTimeout = 5 * F.minute
        let (outputs, _, _) = F.run([F.event(1, at: 0), F.event(2, at: 5 * F.minute), F.event(3, at: 10 * F.minute + 1)], rules: rules)
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(3)])
    }

    @Test func maximumLengthStartsANewSession() {
        // A pageview every 20 minutes never times out, but the session may last at most 24 hours.
        let events = (0...80).map { F.event($0 + 1, at: Int64($0) * 20 * F.minute) }
        let (outputs, _, _) = F.run(events)
        // Event 73 (index 72) is exactly 24 h after the start: still inside; index 73 is past it.
        #expect(outputs[0...72].allSatisfy { $0.sessionId == F.uuid(1) })
        #expect(outputs[73].sessionId == F.uuid(74))
        #expect(outputs[73].sessionStartedAt == F.start + 73 * 20 * F.minute)
        #expect(outputs[74...].allSatisfy { $0.sessionId == F.uuid(74) })
    }

    @Test func customMaximumLength() {
        var rules = SessionRules()
        rules.maximumLength = 30 * F.minute
        let (outputs, _, _) = F.run([F.event(1, at: 0), F.event(2, at: 20 * F.minute), F.event(3, at: 40 * F.minute)], rules: rules)
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(3)])
    }

    /// F.start is 2026-11-23 10:00 UTC, 02:00 in Los Angeles (UTC−8): local midnight comes
    /// 22 hours later, UTC midnight 14 hours later.
    static let losAngeles = TimeZone(identifier: "America/Los_Angeles")!

    @Test(arguments: [true, false])
    func midnightSplitInTheSitesTimeZone(split: Bool) {
        var rules = SessionRules()
        rules.splitAtMidnight = split
        rules.timeZone = Self.losAngeles
        // 23:40 and 23:50 local, then 00:10 the next local day: 20 minutes later, inside the timeout.
        let (outputs, _, _) = F.run([F.event(1, at: 21 * F.hour + 40 * F.minute), F.event(2, at: 21 * F.hour + 50 * F.minute),
                                     F.event(3, at: 22 * F.hour + 10 * F.minute)], rules: rules)
        #expect(outputs[1].sessionId == F.uuid(1))
        #expect(outputs[2].sessionId == (split ? F.uuid(3) : F.uuid(1)))
    }

    @Test func midnightSplitFollowsTheSitesZoneNotUTC() {
        var rules = SessionRules()
        rules.splitAtMidnight = true
        rules.timeZone = Self.losAngeles
        // 23:50 and 00:10 UTC are 15:50 and 16:10 in Los Angeles: one session there.
        let (outputs, _, _) = F.run([F.event(1, at: 13 * F.hour + 50 * F.minute), F.event(2, at: 14 * F.hour + 10 * F.minute)], rules: rules)
        #expect(outputs[1].sessionId == F.uuid(1))
        rules.timeZone = TimeZone(identifier: "UTC")!
        #expect(F.run([F.event(1, at: 13 * F.hour + 50 * F.minute), F.event(2, at: 14 * F.hour + 10 * F.minute)], rules: rules).outputs[1].sessionId == F.uuid(2))
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
        let (outputs, _, _) = F.run([F.event(1, at: 0, url: firstURL), F.event(2, at: 5 * F.minute, url: secondURL)])
        #expect(outputs[1].sessionId == (isNew ? F.uuid(2) : F.uuid(1)))
        if isNew {
            #expect(outputs[1].context == SourceClassification.context(page: PageURL(secondURL), referrer: nil))
            #expect(outputs[1].sessionStartedAt == F.start + 5 * F.minute)
        } else {
            #expect(outputs[1].context == outputs[0].context)
        }
    }

    @Test func campaignSessionContextComesFromTheNewCampaign() {
        let (outputs, state, _) = F.run([
            F.event(1, at: 0, url: "https://shop.example/?utm_source=google&utm_medium=cpc&utm_campaign=a"),
            F.event(2, at: F.minute, url: "https://shop.example/sale?utm_source=newsletter&utm_medium=email&utm_campaign=b"),
        ])
        #expect(outputs[1].context.source == "newsletter")
        #expect(outputs[1].context.campaign == "b")
        #expect(outputs[1].context.landingPage == "/sale")
        #expect(outputs[1].sessionStartedAt == F.start + F.minute)
        #expect(state?.latest?.campaignKey == Sessionization.campaignKey(PageURL("https://x/?utm_campaign=b&utm_medium=email&utm_source=newsletter")))
    }

    @Test func referrerChangeAloneDoesNotStartASession() {
        let (outputs, _, _) = F.run([
            F.event(1, at: 0, referrer: Self.google),
            F.event(2, at: 10 * F.minute, referrer: "https://www.facebook.com/"),
        ])
        #expect(outputs[1].sessionId == F.uuid(1))
        #expect(outputs[1].context.source == "google")
    }

    // MARK: The site's own hosts

    @Test func referralFromTheSitesOwnHostNeverStartsASessionOrOverridesItsSource() {
        var rules = SessionRules()
        rules.ownHosts = ["checkout.shop.example"]
        let (outputs, _, _) = F.run([
            F.event(1, at: 0, url: "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=may"),
            F.event(2, at: 10 * F.minute, url: "https://shop.example/thanks", referrer: "https://checkout.shop.example/pay"),
        ], rules: rules)
        #expect(outputs[1].sessionId == F.uuid(1))
        #expect(outputs[1].context.source == "newsletter")
    }

    @Test(arguments: ["https://shop.example/cart", "https://checkout.shop.example/pay", "https://WWW.checkout.shop.example/"])
    func returnFromOwnPagesAfterTheTimeoutKeepsTheSource(referrer: String) {
        var rules = SessionRules()
        rules.ownHosts = ["checkout.shop.example"]
        let (outputs, _, _) = F.run([
            F.event(1, at: 0, url: "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=may"),
            // A tab left open for an hour, then a click on one of the site's own links.
            F.event(2, at: F.hour, url: "https://shop.example/products/p1", referrer: referrer),
        ], rules: rules)
        #expect(outputs[1].sessionId == F.uuid(2))
        #expect(outputs[1].context.source == "newsletter")
        #expect(outputs[1].context.campaign == "may")
        #expect(outputs[1].context.landingPage == "/products/p1")
    }

    @Test func ownHostWithoutAnEarlierSessionIsDirect() {
        var rules = SessionRules()
        rules.ownHosts = ["checkout.shop.example"]
        let (outputs, _, _) = F.run([F.event(1, at: 0, referrer: "https://checkout.shop.example/pay")], rules: rules)
        #expect(outputs[0].context == SourceClassification.context(page: PageURL("https://shop.example/"), referrer: nil))
        #expect(outputs[0].context.channel == "Direct")
    }

    // MARK: Late and out-of-order events

    @Test func lateEventJoinsWithoutMovingTheClockBack() {
        let (outputs, state, _) = F.run([F.event(1, at: 0), F.event(2, at: 20 * F.minute), F.event(3, at: 5 * F.minute)])
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(1)])
        #expect(state?.latest?.lastEventAt == F.start + 20 * F.minute)
        // 45 minutes after the late event's time but only 25 after the latest: still the same session.
        let next = Sessionization.process(F.event(4, at: 45 * F.minute), state: state, rules: SessionRules())
        #expect(next.enriched.sessionId == F.uuid(1))
    }

    @Test func lateEventLandsInTheEarlierSessionItsTimeBelongsTo() {
        let (outputs, state, _) = F.run([
            F.event(1, at: 0, referrer: Self.google),
            F.event(2, at: 10 * F.minute),
            F.event(3, at: 5 * F.hour, url: "https://shop.example/?utm_source=newsletter&utm_medium=email"),
            // Sent late (an offline retry queue): it happened during the first visit.
            F.event(4, at: 15 * F.minute),
            F.event(5, at: 5 * F.hour + F.minute),
        ])
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(3), F.uuid(1), F.uuid(3)])
        #expect(outputs[3].context.source == "google")
        #expect(state?.sessions.map(\.id) == [F.uuid(1), F.uuid(3)])
        #expect(state?.sessions.first?.lastEventAt == F.start + 15 * F.minute)
    }

    @Test func lateEventInAGapStartsItsOwnSessionInTheRightPlace() {
        let (outputs, state, _) = F.run([
            F.event(1, at: 0, referrer: Self.google),
            F.event(2, at: 10 * F.hour, referrer: "https://t.co/x"),
            F.event(3, at: 5 * F.hour, referrer: "https://www.bing.com/"),
        ])
        #expect(outputs[2].sessionId == F.uuid(3))
        #expect(outputs[2].context.source == "bing")
        #expect(state?.sessions.map(\.id) == [F.uuid(1), F.uuid(3), F.uuid(2)])
        #expect(state?.latest?.id == F.uuid(2))
        // A server event after the late session but before the newest one inherits the late session.
        let server = Sessionization.process(F.event(4, at: 6 * F.hour, type: .event, origin: .server), state: state, rules: SessionRules())
        #expect(server.enriched.sessionId == F.uuid(3))
    }

    @Test func lateEventJustBeforeASessionJoinsIt() {
        let (outputs, state, _) = F.run([F.event(1, at: 10 * F.minute, referrer: Self.google), F.event(2, at: 0)])
        #expect(outputs[1].sessionId == F.uuid(1))
        #expect(state?.latest?.startedAt == F.start)
        #expect(state?.latest?.context.source == "google")
    }

    @Test func sessionsOlderThanTheToleranceAreForgotten() {
        var rules = SessionRules()
        rules.lateTolerance = 2 * F.hour
        rules.maximumSessionsKept = 3
        let events = (0..<6).map { F.event($0 + 1, at: Int64($0) * F.hour) }
        let (_, state, _) = F.run(events, rules: rules)
        #expect(state?.sessions.map(\.id) == [F.uuid(4), F.uuid(5), F.uuid(6)])
        rules.maximumSessionsKept = 2
        #expect(F.run(events, rules: rules).state?.sessions.map(\.id) == [F.uuid(5), F.uuid(6)])
    }

    // MARK: Server events and identifies

    @Test(arguments: [SessionFixture.minute, 29 * SessionFixture.day, 30 * SessionFixture.day])
    func serverEventInheritsTheLatestSessionWithinLookback(delay: Int64) {
        let browser = F.event(1, at: 0, url: "https://shop.example/?utm_source=newsletter&utm_medium=email&utm_campaign=may")
        let first = Sessionization.process(browser, state: nil, rules: SessionRules())
        let server = F.event(2, at: delay, type: .event, origin: .server, url: nil, anonymousId: "anon-1", userId: "user-9")
        let result = Sessionization.process(server, state: first.state, rules: SessionRules())
        #expect(result.enriched.sessionId == F.uuid(1))
        #expect(result.enriched.sessionStartedAt == F.start)
        #expect(result.enriched.context == first.enriched.context)
        #expect(result.enriched.context.channel == "Email")
        #expect(result.enriched.personId == "user-9")
        #expect(result.state.personId == "user-9")
        // A server event does not extend the browser session.
        #expect(result.state.sessions == first.state.sessions)
    }

    @Test func serverEventBeyondLookbackIsUnattributedButKeepsHistory() {
        let first = Sessionization.process(F.event(1, at: 0, referrer: Self.google), state: nil, rules: SessionRules())
        let server = F.event(2, at: 30 * F.day + 1, type: .event, origin: .server, url: nil, userId: "user-9")
        let result = Sessionization.process(server, state: first.state, rules: SessionRules())
        #expect(result.enriched.context == .unattributed)
        #expect(result.enriched.context.source == "(unattributed)")
        #expect(result.enriched.sessionId == F.uuid(2))
        #expect(result.enriched.sessionStartedAt == F.start + 30 * F.day + 1)
        #expect(result.enriched.personId == "user-9")
        #expect(result.state.sessions == first.state.sessions)
    }

    @Test func customLookback() {
        var rules = SessionRules()
        rules.lookback = F.hour
        let state = Sessionization.process(F.event(1, at: 0), state: nil, rules: rules).state
        let inside = Sessionization.process(F.event(2, at: F.hour, origin: .server), state: state, rules: rules).enriched
        let outside = Sessionization.process(F.event(3, at: F.hour + 1, origin: .server), state: state, rules: rules).enriched
        #expect(inside.sessionId == F.uuid(1))
        #expect(outside.sessionId == F.uuid(3))
        #expect(outside.context == .unattributed)
    }

    @Test func serverEventWithoutStateIsUnattributed() {
        let server = F.event(1, at: 0, type: .event, origin: .server, url: "https://shop.example/?utm_source=google&utm_medium=cpc",
                             referrer: Self.google, anonymousId: nil, userId: "user-1")
        let result = Sessionization.process(server, state: nil, rules: SessionRules())
        #expect(result.enriched.context == .unattributed)
        #expect(result.enriched.context.channel == "Unassigned")
        #expect(result.enriched.sessionId == F.uuid(1))
        #expect(result.enriched.personId == "user-1")
        #expect(result.state.sessions.isEmpty)

        // The visitor's next browser event starts a real session at once.
        let browser = Sessionization.process(F.event(2, at: F.minute, referrer: "https://t.co/x", anonymousId: "anon-1"), state: result.state, rules: SessionRules())
        #expect(browser.enriched.sessionId == F.uuid(2))
        #expect(browser.enriched.context.source == "twitter")
        #expect(browser.enriched.personId == "user-1")
    }

    @Test func serverEventBeforeEverySessionIsUnattributed() {
        let state = Sessionization.process(F.event(1, at: F.hour, referrer: Self.google), state: nil, rules: SessionRules()).state
        let result = Sessionization.process(F.event(2, at: 0, type: .event, origin: .server), state: state, rules: SessionRules())
        #expect(result.enriched.context == .unattributed)
    }

    @Test func serverEventNeverStartsASessionFromItsOwnURL() {
        let state = Sessionization.process(F.event(1, at: 0, referrer: Self.google), state: nil, rules: SessionRules()).state
        let server = F.event(2, at: 2 * F.hour, type: .event, origin: .server, url: "https://shop.example/?utm_source=x&utm_campaign=y")
        let result = Sessionization.process(server, state: state, rules: SessionRules())
        #expect(result.enriched.sessionId == F.uuid(1))
        #expect(result.enriched.context.source == "google")
        #expect(result.state.sessions == state.sessions)
    }

    @Test func identifyWithoutStateDoesNotStartASession() {
        let (outputs, state, _) = F.run([
            F.event(1, at: 0, type: .identify, userId: "user-1"),
            F.event(2, at: F.minute, referrer: Self.google),
            F.event(3, at: 2 * F.minute),
        ])
        #expect(outputs[0].context == .unattributed)
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(2), F.uuid(2)])
        #expect(outputs[1].context.source == "google")
        #expect(outputs[1].sessionStartedAt == F.start + F.minute)
        #expect(outputs.map(\.personId) == ["user-1", "user-1", "user-1"])
        #expect(state?.sessions.map(\.id) == [F.uuid(2)])
    }

    @Test func identifyJoinsTheLatestSessionWithoutExtendingIt() {
        let (outputs, _, _) = F.run([
            F.event(1, at: 0, referrer: Self.google),
            F.event(2, at: 2 * F.hour, type: .identify, url: "https://shop.example/?utm_source=x", userId: "user-1"),
            F.event(3, at: 2 * F.hour + F.minute),
        ])
        #expect(outputs[1].sessionId == F.uuid(1))
        #expect(outputs[1].context.source == "google")
        // The identify did not keep the session alive: the next pageview starts a new one.
        #expect(outputs[2].sessionId == F.uuid(3))
        #expect(outputs.map(\.personId) == ["anon-1", "user-1", "user-1"])
    }

    // MARK: People and identity links

    @Test func personIsTheUserOnceKnownAndEachNewUserIsLinkedOnce() {
        let (outputs, state, links) = F.run([
            F.event(1, at: 0, anonymousId: "anon-1"),
            F.event(2, at: F.minute, type: .event, anonymousId: "anon-1", userId: "user-1"),
            F.event(3, at: 2 * F.minute, anonymousId: "anon-1", userId: "user-1"),
            F.event(4, at: 5 * F.hour, anonymousId: "anon-1"),
            F.event(5, at: 5 * F.hour + F.minute, anonymousId: "anon-1", userId: "user-2"),
        ])
        #expect(outputs.map(\.personId) == ["anon-1", "user-1", "user-1", "user-1", "user-2"])
        #expect(outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(1), F.uuid(4), F.uuid(4)])
        #expect(state?.personId == "user-2")
        #expect(links == [
            IdentityLink(site: "shop.example", anonymousId: "anon-1", personId: "user-1", linkedAt: F.start + F.minute, eventUUID: F.uuid(2)),
            IdentityLink(site: "shop.example", anonymousId: "anon-1", personId: "user-2", linkedAt: F.start + 5 * F.hour + F.minute, eventUUID: F.uuid(5)),
        ])
        #expect(links[0].partitionKey == outputs[0].partitionKey)
    }

    @Test(arguments: [EventType.identify, .event, .pageview])
    func anEventWithBothIdsLinksThem(type: EventType) {
        let result = Sessionization.process(F.event(1, at: 0, type: type, anonymousId: "guest-7", userId: "user-7"), state: nil, rules: SessionRules())
        #expect(result.link?.anonymousId == "guest-7")
        #expect(result.link?.personId == "user-7")
        #expect(result.enriched.personId == "user-7")
    }

    @Test func aServerEventWithBothIdsLinksAGuestWhoRegistered() {
        let guest = F.run([F.event(1, at: 0, url: "https://shop.example/?utm_source=newsletter&utm_medium=email", anonymousId: "guest-1")])
        let registered = Sessionization.process(F.event(2, at: F.minute, type: .event, origin: .server, anonymousId: "guest-1", userId: "u-42"),
                                                state: guest.state, rules: SessionRules())
        #expect(registered.link?.personId == "u-42")
        #expect(registered.enriched.context.source == "newsletter")
    }

    @Test func aUserOnTwoDevicesIsOnePerson() {
        let phone = F.run([F.event(1, at: 0, anonymousId: "phone", userId: "u-1"), F.event(2, at: F.minute, anonymousId: "phone")])
        let laptop = F.run([F.event(3, at: F.day, anonymousId: "laptop"), F.event(4, at: F.day + F.minute, type: .identify, anonymousId: "laptop", userId: "u-1"),
                            F.event(5, at: F.day + 2 * F.minute, anonymousId: "laptop")])
        #expect(phone.outputs.map(\.personId) == ["u-1", "u-1"])
        #expect(laptop.outputs.map(\.personId) == ["laptop", "u-1", "u-1"])
        #expect(phone.links.map(\.anonymousId) == ["phone"])
        #expect(laptop.links.map(\.anonymousId) == ["laptop"])
        #expect(Set((phone.links + laptop.links).map(\.personId)) == ["u-1"])
    }

    @Test func noLinkWithoutAnAnonymousId() {
        let result = Sessionization.process(F.event(1, at: 0, type: .event, origin: .server, anonymousId: nil, userId: "u-1"), state: nil, rules: SessionRules())
        #expect(result.link == nil)
        #expect(result.enriched.personId == "u-1")
    }

    @Test func anonymousEventWithoutIdsIsItsOwnPerson() {
        let result = Sessionization.process(F.event(7, at: 0, anonymousId: nil), state: nil, rules: SessionRules())
        #expect(result.enriched.personId == F.uuid(7).uuidString)
    }

    // MARK: Determinism and state

    @Test func replayingTheSameEventsGivesTheSameOutput() throws {
        let events = [
            F.event(1, at: 0, url: "https://shop.example/?gclid=a"),
            F.event(2, at: F.minute, type: .identify, userId: "u"),
            F.event(3, at: 40 * F.minute),
            F.event(4, at: 41 * F.minute, type: .event, origin: .server),
            F.event(5, at: 50 * F.minute, url: "https://shop.example/?utm_source=n&utm_campaign=c"),
            F.event(6, at: 20 * F.minute),
        ]
        let first = F.run(events)
        let second = F.run(events)
        #expect(first.outputs == second.outputs)
        #expect(first.state == second.state)
        #expect(first.links == second.links)
        #expect(first.outputs.map(\.sessionId) == [F.uuid(1), F.uuid(1), F.uuid(3), F.uuid(3), F.uuid(5), F.uuid(1)])

        // A restart in the middle, from the persisted state, continues exactly where it stopped.
        for cut in 1..<events.count {
            let head = F.run(Array(events[..<cut]))
            let stored = try JSONDecoder().decode(VisitorState.self, from: JSONEncoder().encode(try #require(head.state)))
            let tail = F.run(Array(events[cut...]), state: stored)
            #expect(head.outputs + tail.outputs == first.outputs)
            #expect(head.links + tail.links == first.links)
        }
    }

    @Test func visitorStateIsStoredWithSnakeCaseKeys() throws {
        let state = Sessionization.process(F.event(1, at: 0, url: "https://shop.example/?utm_source=a"), state: nil, rules: SessionRules()).state
        let json = try JSONValue.parse(JSONEncoder().encode(state))
        #expect(Set(try #require(json.objectValue).keys) == ["person_id", "sessions"])
        let session = try #require(json["sessions"]?.arrayValue?.first?.objectValue)
        #expect(Set(session.keys) == ["id", "started_at", "last_event_at", "context", "campaign_key"])
        #expect(try JSONDecoder().decode(VisitorState.self, from: JSONEncoder().encode(state)) == state)
    }
}

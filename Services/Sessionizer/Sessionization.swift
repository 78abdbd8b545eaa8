import Contracts
import Foundation

/// When a new session starts, and how far back events may reach. Times in milliseconds.
public struct SessionRules: Sendable, Hashable {
    /// Inactivity after which the next event starts a new session. Default 30 minutes.
    public var inactivityTimeout: Int64 = 30 * 60_000
    /// Longest a session may last before the next event starts a new one. Default 24 hours.
    public var maximumLength: Int64 = 24 * 3_600_000
    /// Also start a new session when the site's local day changes. Default off.
    public var splitAtMidnight = false
    /// The site's time zone, for the midnight split.
    public var timeZone = TimeZone(identifier: "UTC")!
    /// Hosts of the site itself (beyond the page's own host): a referral from them is internal.
    public var ownHosts: Set<String> = []
    /// How far back a server event may look for a session to inherit context from. Default 30 days.
    public var lookback: Int64 = 30 * 86_400_000
    /// How late an event may arrive and still land in the session its time belongs to: sessions
    /// this much older than the newest are forgotten. Default 72 hours.
    public var lateTolerance: Int64 = 72 * 3_600_000
    /// Most past sessions remembered per visitor for late events. Default 8.
    public var maximumSessionsKept = 8

    public init() {}
}

/// One session of a visitor, as the Sessionizer remembers it.
public struct SessionState: Sendable, Hashable, Codable {
    /// Deterministic: the `event_uuid` of the event that started it.
    public var id: UUID
    public var startedAt: Int64
    public var lastEventAt: Int64
    public var context: SourceContext
    /// The campaign parameters the session started with; a different non-empty set starts a new session.
    public var campaignKey: String?

    enum CodingKeys: String, CodingKey {
        case id, startedAt = "started_at", lastEventAt = "last_event_at", context, campaignKey = "campaign_key"
    }
}

/// What the Sessionizer remembers about one visitor (a device, or a user id without one)
/// between events. Persisted as JSON in `sessionizer.visitors`, so a restarted instance
/// continues exactly where it stopped.
public struct VisitorState: Sendable, Hashable, Codable {
    /// The stitched person: the user id once one was seen with this visitor, else the visitor id.
    public var personId: String
    /// Recent sessions, oldest first; the last one is the newest. Empty until a browser event.
    public var sessions: [SessionState]

    public var latest: SessionState? { sessions.last }

    enum CodingKeys: String, CodingKey {
        case personId = "person_id", sessions
    }
}

/// The Sessionizer's answer for one event.
public struct SessionizedEvent: Sendable, Hashable {
    public var enriched: EnrichedEvent
    public var state: VisitorState
    /// Set when this event links its anonymous id to a (new) user.
    public var link: IdentityLink?
}

/// The pure core of the Sessionizer: one event and the visitor's state in, the enriched event
/// and the next state out. No I/O, no clock: replaying the same events gives the same output.
public enum Sessionization {
    public static func process(_ event: RawEvent, state: VisitorState?, rules: SessionRules) -> SessionizedEvent {
        let personId = event.userId ?? state?.personId ?? event.anonymousId ?? event.eventUUID.uuidString
        var link: IdentityLink?
        if let anonymousId = event.anonymousId, let userId = event.userId, userId != state?.personId {
            link = IdentityLink(site: event.site, anonymousId: anonymousId, personId: userId, linkedAt: event.occurredAt, eventUUID: event.eventUUID)
        }
        var next = state ?? VisitorState(personId: personId, sessions: [])
        next.personId = personId

        // Server events and identifies never start a session: they join the visitor's latest
        // session that began before them, within the lookback, or stay unattributed.
        guard event.origin == .browser && event.type != .identify else {
            let session = next.sessions.last { $0.startedAt <= event.occurredAt && event.occurredAt - $0.lastEventAt <= rules.lookback }
            let enriched = session.map { enrichedEvent(event, personId: personId, session: $0) }
                ?? EnrichedEvent(event: event, sessionId: event.eventUUID, personId: personId, sessionStartedAt: event.occurredAt, context: .unattributed)
            return SessionizedEvent(enriched: enriched, state: next, link: link)
        }

        let page = PageURL(event.url)
        let campaignKey = campaignKey(page)
        // The session the event's time falls in: the last one started at or before it (or, for
        // an event slightly older than everything remembered, the first one).
        let index = next.sessions.lastIndex { $0.startedAt <= event.occurredAt } ?? (next.sessions.isEmpty ? nil : 0)
        if let index, joins(event, campaignKey: campaignKey, session: next.sessions[index], rules: rules) {
            var session = next.sessions[index]
            // A late event joins without moving the clock backwards.
            session.startedAt = min(session.startedAt, event.occurredAt)
            session.lastEventAt = max(session.lastEventAt, event.occurredAt)
            next.sessions[index] = session
            return SessionizedEvent(enriched: enrichedEvent(event, personId: personId, session: session), state: next, link: link)
        }

        var context = SourceClassification.context(page: page, referrer: event.referrer, ownHosts: rules.ownHosts)
        // A return from the site's own pages (a tab left open past the timeout) keeps the source
        // of the visit that brought the visitor, instead of counting as direct.
        if campaignKey == nil, isInternal(referrer: event.referrer, page: page, rules: rules),
           let previous = next.sessions.last(where: { $0.startedAt <= event.occurredAt }) {
            let landingPage = context.landingPage
            context = previous.context
            context.landingPage = landingPage
        }
        let session = SessionState(id: event.eventUUID, startedAt: event.occurredAt, lastEventAt: event.occurredAt, context: context, campaignKey: campaignKey)
        let position = next.sessions.firstIndex { $0.startedAt > event.occurredAt } ?? next.sessions.endIndex
        next.sessions.insert(session, at: position)
        next.sessions = kept(next.sessions, rules: rules)
        return SessionizedEvent(enriched: enrichedEvent(event, personId: personId, session: session), state: next, link: link)
    }

    /// Whether a browser event continues this session rather than starting a new one.
    static func joins(_ event: RawEvent, campaignKey: String?, session: SessionState, rules: SessionRules) -> Bool {
        let time = event.occurredAt
        // Inactivity on either side: after the session's last event, or before its first.
        if time - session.lastEventAt > rules.inactivityTimeout || session.startedAt - time > rules.inactivityTimeout { return false }
        if max(time, session.lastEventAt) - min(time, session.startedAt) > rules.maximumLength { return false }
        if let campaignKey, campaignKey != session.campaignKey { return false }
        if rules.splitAtMidnight, localDay(time, in: rules.timeZone) != localDay(session.startedAt, in: rules.timeZone) { return false }
        return true
    }

    /// Sessions worth remembering: the newest few, within the late-event tolerance of the newest.
    static func kept(_ sessions: [SessionState], rules: SessionRules) -> [SessionState] {
        guard let newest = sessions.map(\.lastEventAt).max() else { return sessions }
        let recent = sessions.filter { newest - $0.lastEventAt <= rules.lateTolerance }
        return Array(recent.suffix(max(1, rules.maximumSessionsKept)))
    }

    static func isInternal(referrer: String?, page: PageURL?, rules: SessionRules) -> Bool {
        guard let host = PageURL(referrer)?.host else { return false }
        return SourceClassification.isOwnHost(host, pageHost: page?.host, ownHosts: rules.ownHosts)
    }

    /// Days since the epoch in a time zone.
    static func localDay(_ millis: Int64, in zone: TimeZone) -> Int64 {
        let seconds = millis / 1000
        let offset = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))))
        return Int64((Double(seconds + offset) / 86_400).rounded(.down))
    }

    /// The source context and campaign key of a session that starts on `url`, coming from
    /// `referrer` (for generated benchmark traffic: the same classification as live sessions).
    public static func source(url: String?, referrer: String?) -> (context: SourceContext, campaignKey: String?) {
        let page = PageURL(url)
        return (SourceClassification.context(page: page, referrer: referrer), campaignKey(page))
    }

    /// utm_source/medium/campaign and click ids, when any is present.
    static func campaignKey(_ page: PageURL?) -> String? {
        guard let query = page?.query else { return nil }
        let parts = ["utm_source", "utm_medium", "utm_campaign", "gclid", "gbraid", "wbraid", "fbclid", "msclkid", "ttclid"].map { query[$0] ?? "" }
        return parts.allSatisfy(\.isEmpty) ? nil : parts.joined(separator: "\u{1F}")
    }

    static func enrichedEvent(_ event: RawEvent, personId: String, session: SessionState) -> EnrichedEvent {
        EnrichedEvent(event: event, sessionId: session.id, personId: personId, sessionStartedAt: session.startedAt, context: session.context)
    }
}

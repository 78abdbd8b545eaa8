import Contracts
import Foundation

/// When a new session starts. Times in milliseconds.
public struct SessionRules: Sendable, Hashable {
    /// Inactivity after which the next event starts a new session. Default 30 minutes.
    public var inactivityTimeout: Int64 = 30 * 60_000
    /// Longest a session may last before the next event starts a new one. Default 24 hours.
    public var maximumLength: Int64 = 24 * 3_600_000
    /// How far back a server event may look for a session to inherit context from. Default 30 days.
    public var lookback: Int64 = 30 * 86_400_000

    public init() {}
}

/// What the Sessionizer remembers about one visitor between events. Persisted as JSON in
/// `sessionizer.visitors`, so a restarted instance continues exactly where it stopped.
public struct VisitorState: Sendable, Hashable, Codable {
    public var personId: String
    public var sessionId: UUID
    public var sessionStartedAt: Int64
    public var lastEventAt: Int64
    public var context: SourceContext
    /// The campaign parameters the session started with; a different non-empty set starts a new session.
    public var campaignKey: String?

    enum CodingKeys: String, CodingKey {
        case personId = "person_id", sessionId = "session_id", sessionStartedAt = "session_started_at"
        case lastEventAt = "last_event_at", context, campaignKey = "campaign_key"
    }
}

/// The pure core of the Sessionizer: one event and the visitor's state in, the enriched event
/// and the next state out. No I/O, no clock: replaying the same events gives the same output.
public enum Sessionization {
    public static func process(_ event: RawEvent, state: VisitorState?, rules: SessionRules) -> (EnrichedEvent, VisitorState) {
        let page = PageURL(event.url)
        let campaignKey = campaignKey(page)
        let personId = event.userId ?? state?.personId ?? event.anonymousId ?? event.eventUUID.uuidString

        // Server events and identifies never start a session: they join the visitor's latest
        // one within the lookback, or stay unattributed.
        let startsSessions = event.origin == .browser && event.type != .identify
        if !startsSessions {
            if var state, event.occurredAt - state.lastEventAt <= rules.lookback {
                state.personId = personId
                return (enriched(event, state: state), state)
            }
            let unattributed = VisitorState(
                personId: personId, sessionId: event.eventUUID, sessionStartedAt: event.occurredAt,
                lastEventAt: event.occurredAt, context: .unattributed, campaignKey: nil)
            // Keep any earlier state: an unattributed server event must not erase a visitor's history.
            return (enriched(event, state: unattributed), state.map { var kept = $0; kept.personId = personId; return kept } ?? unattributed)
        }

        if var state, !startsNewSession(event, campaignKey: campaignKey, state: state, rules: rules) {
            state.personId = personId
            // A late event joins the session without moving its clock backwards.
            state.lastEventAt = max(state.lastEventAt, event.occurredAt)
            return (enriched(event, state: state), state)
        }
        let context = SourceClassification.context(page: page, referrer: event.referrer)
        let newState = VisitorState(
            personId: personId, sessionId: event.eventUUID, sessionStartedAt: event.occurredAt,
            lastEventAt: event.occurredAt, context: context, campaignKey: campaignKey)
        return (enriched(event, state: newState), newState)
    }

    static func startsNewSession(_ event: RawEvent, campaignKey: String?, state: VisitorState, rules: SessionRules) -> Bool {
        if state.context == .unattributed { return true }
        if event.occurredAt - state.lastEventAt > rules.inactivityTimeout { return true }
        if event.occurredAt - state.sessionStartedAt > rules.maximumLength { return true }
        if let campaignKey, campaignKey != state.campaignKey { return true }
        return false
    }

    /// utm_source/medium/campaign and click ids, when any is present.
    static func campaignKey(_ page: PageURL?) -> String? {
        guard let query = page?.query else { return nil }
        let parts = ["utm_source", "utm_medium", "utm_campaign", "gclid", "fbclid", "msclkid", "ttclid"].map { query[$0] ?? "" }
        return parts.allSatisfy(\.isEmpty) ? nil : parts.joined(separator: "\u{1F}")
    }

    static func enriched(_ event: RawEvent, state: VisitorState) -> EnrichedEvent {
        EnrichedEvent(event: event, sessionId: state.sessionId, personId: state.personId,
                      sessionStartedAt: state.sessionStartedAt, context: state.context)
    }
}

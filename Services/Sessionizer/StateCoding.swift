import Contracts
import Foundation

extension VisitorState {
    /// The checkpoint's JSON, written directly: the members and values `JSONEncoder` writes
    /// (absent optionals left out), which `jsonb` stores as the same document, and which the
    /// Codable decoder reads back into an equal state (tests check both).
    func checkpointJSON() -> String {
        var writer = JSONBytesWriter(capacity: 256 + 320 * sessions.count)
        writer.beginObject()
        writer.string("person_id", personId)
        writer.key("sessions")
        writer.beginArray()
        for session in sessions {
            writer.element()
            writer.beginObject()
            writer.uuid("id", session.id)
            writer.integer("started_at", session.startedAt)
            writer.integer("last_event_at", session.lastEventAt)
            writer.key("context")
            writer.beginObject()
            let context = session.context
            writer.string("source", context.source)
            writer.string("medium", context.medium)
            writer.string("campaign", context.campaign)
            writer.string("term", context.term)
            writer.string("content", context.content)
            writer.string("click_id", context.clickId)
            writer.string("click_id_name", context.clickIdName)
            writer.string("referrer", context.referrer)
            writer.string("referrer_domain", context.referrerDomain)
            writer.string("landing_page", context.landingPage)
            writer.string("channel", context.channel)
            writer.endObject()
            writer.string("campaign_key", session.campaignKey)
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}

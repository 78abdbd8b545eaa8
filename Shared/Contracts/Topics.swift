/// Kafka topic names shared by every service.
public enum Topics {
    /// Normalised events from the Collector, keyed by site + visitor id.
    public static let raw = "tributary.events.raw"
    /// Events with session, source context and person, keyed by site + person.
    public static let enriched = "tributary.events.enriched"
    /// Goal and funnel definition changes (compacted).
    public static let definitions = "tributary.definitions"
    /// Messages a consumer could not process, with the reason in a header.
    public static let deadLetter = "tributary.deadletter"

    public static let all = [raw, enriched, definitions, deadLetter]
}

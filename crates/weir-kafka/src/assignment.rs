//! Which source instance reads which partition: Flink's `KafkaSourceEnumerator` rule, with a
//! hash that is the same on every worker and every run.

/// The instance of `instances` that owns `partition` of `topic`: the topic's start index
/// (from a stable hash of its name) plus the partition number, modulo the instances. A
/// topic's partitions go round robin from its start index, so topics with few partitions
/// do not all land on instance 0.
///
/// ```
/// use weir_kafka::owner;
/// let owners: Vec<usize> = (0..4).map(|p| owner("events", p, 2)).collect();
/// assert_eq!(owners.iter().filter(|&&o| o == 0).count(), 2);
/// assert_eq!(owner("events", 3, 1), 0);
/// ```
pub fn owner(topic: &str, partition: i32, instances: usize) -> usize {
    let n = instances.max(1) as u64;
    let start = topic_hash(topic) % n;
    ((start + partition.max(0) as u64) % n) as usize
}

/// FNV-1a of a topic's name: the same on every platform, Rust version and run.
pub(crate) fn topic_hash(topic: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

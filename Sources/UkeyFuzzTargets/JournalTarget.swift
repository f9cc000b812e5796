import UkeyCodec
import UkeyDaemon

extension FuzzTarget {
    /// A line of the boot journal, which ukeyd replays at start from a tmpfs file.
    static let journal = FuzzTarget(
        name: "journal",
        property:
            "a line is taken only as one of its six kinds, writes back to the same JSON value, and reads back to the same line",
        check: { bytes throws(FuzzFailure) in
            guard let line = BootJournal.Line(bytes) else { return }
            let written = line.bytes
            try require(BootJournal.Line(written) == line, "\(line) does not survive writing")
            try require(
                (try? JSONReader.parse(written)) == (try? JSONReader.parse(bytes)),
                "\(line) writes another JSON value than it was read from"
            )
        },
        seeds: {
            [
                BootJournal.Line.header(hostBoot: "8d3c", boot: "b1").bytes,
                BootJournal.Line.measurement(
                    entity: "vmm",
                    component: "kernel",
                    digest: "sha256:" + String(repeating: "0", count: 64),
                    register: 8
                ).bytes,
                BootJournal.Line.reset(boot: "b2").bytes, BootJournal.Line.release(entity: "office").bytes,
                BootJournal.Line.void(count: 2).bytes,
                BootJournal.Line.measurement(
                    entity: "office",
                    component: "disk-vda",
                    digest: "sha256:" + String(repeating: "1", count: 64),
                    register: 11,
                    sealed: "sha256:" + String(repeating: "2", count: 64),
                    path: "/var/lib/libvirt/images/office.qcow2"
                ).bytes,
                BootJournal.Line.started(entity: "office").bytes,
            ]
        }
    )
}

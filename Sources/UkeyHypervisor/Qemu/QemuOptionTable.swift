/// QEMU 7.2's option table for qemu-system-x86_64 (qemu-options.hx's DEF lines whose arch mask
/// includes x86, and vl.c's `-h`): which options exist and which take an argument. vl.c takes the
/// next word as an option's argument unconditionally, even when it begins with `-` (`-D -name`
/// logs to a file named "-name"), so the gate must know this for every option, not only those it
/// allows: one it reads wrong shifts every option after it.
enum QemuOptionTable {
    /// Option name (without its dash) -> takes an argument.
    static let takesArgument: [String: Bool] = [
        "h": false, "help": false, "version": false, "machine": true, "M": true, "cpu": true, "accel": true,
        "smp": true,
        "numa": true, "add-fd": true, "set": true, "global": true, "boot": true, "m": true, "mem-path": true,
        "mem-prealloc": false, "k": true, "audio-help": false, "audio": true, "audiodev": true, "device": true,
        "name": true,
        "uuid": true, "fda": true, "fdb": true, "hda": true, "hdb": true, "hdc": true, "hdd": true, "cdrom": true,
        "blockdev": true, "drive": true, "mtdblock": true, "sd": true, "snapshot": false, "fsdev": true, "virtfs": true,
        "iscsi": true, "usb": false, "usbdevice": true, "display": true, "nographic": false, "spice": true,
        "portrait": false, "rotate": true, "vga": true, "full-screen": false, "vnc": true, "win2k-hack": false,
        "no-fd-bootchk": false, "no-acpi": false, "no-hpet": false, "acpitable": true, "smbios": true, "netdev": true,
        "nic": true, "net": true, "chardev": true, "tpmdev": true, "bios": true, "pflash": true, "kernel": true,
        "append": true, "initrd": true, "dtb": true, "compat": true, "fw_cfg": true, "serial": true, "parallel": true,
        "monitor": true, "qmp": true, "qmp-pretty": true, "mon": true, "debugcon": true, "pidfile": true,
        "singlestep": false, "preconfig": false, "S": false, "overcommit": true, "gdb": true, "s": false, "d": true,
        "D": true, "dfilter": true, "seed": true, "L": true, "enable-kvm": false, "xen-domid": true,
        "xen-attach": false,
        "xen-domid-restrict": false, "no-reboot": false, "no-shutdown": false, "action": true, "loadvm": true,
        "daemonize": false, "option-rom": true, "rtc": true, "icount": true, "watchdog-action": true, "echr": true,
        "incoming": true, "only-migratable": false, "nodefaults": false, "chroot": true, "runas": true, "sandbox": true,
        "readconfig": true, "no-user-config": false, "trace": true, "plugin": true, "qtest": true, "qtest-log": true,
        "async-teardown": false, "msg": true, "dump-vmstate": true, "enable-sync-profile": false, "object": true,
        // DEF'd for other targets: QEMU knows the name (and whether it takes an argument) but
        // refuses it on x86 ("Option not supported for this target").
        "g": true, "prom-env": true, "semihosting": false, "semihosting-config": true, "old-param": false,
    ]

    /// Options that load no file and change nothing the gate measures: let through as they are.
    static let harmless: Set<String> = [
        "h", "help", "version", "audio-help", "mem-prealloc", "snapshot", "usb", "nographic", "portrait", "full-screen",
        "win2k-hack", "no-fd-bootchk", "no-acpi", "no-hpet", "singlestep", "S", "enable-kvm", "no-reboot",
        "no-shutdown",
        "daemonize", "only-migratable", "nodefaults", "no-user-config", "async-teardown", "enable-sync-profile",
        "uuid", "cpu", "rotate", "d", "dfilter", "seed", "echr", "watchdog-action", "pidfile", "D", "runas", "vga",
    ]

    /// Options refused whatever their argument, and why.
    static let refused: [String: String] = [
        "set": "rewrites any earlier option's keys (a drive's file=, a device's romfile=)",
        "global": "sets a property of every device of a type (romfile= on every PCI device)",
        "readconfig": "reads devices, drives and objects from a file ukey does not parse",
        "L": "changes where QEMU finds its firmware and option ROMs",
        "option-rom": "loads an option ROM ukey does not measure",
        "fw_cfg": "gives the guest a host file ukey does not measure",
        "acpitable": "loads ACPI tables from host files ukey does not measure",
        "mem-path": "backs guest memory with a host file",
        "fsdev": "shows a host directory to the guest",
        "virtfs": "shows a host directory to the guest",
        "iscsi": "configures iSCSI disks, which ukey cannot measure",
        "fda": "a floppy image of a format QEMU guesses; use -drive with format=",
        "fdb": "a floppy image of a format QEMU guesses; use -drive with format=",
        "mtdblock": "a flash image of a format QEMU guesses; use -drive with format=",
        "sd": "an SD card image of a format QEMU guesses; use -drive with format=",
        "hda": "an image of a format QEMU guesses from its content; use -drive file=...,format=raw|qcow2",
        "hdb": "an image of a format QEMU guesses from its content; use -drive file=...,format=raw|qcow2",
        "hdc": "an image of a format QEMU guesses from its content; use -drive file=...,format=raw|qcow2",
        "hdd": "an image of a format QEMU guesses from its content; use -drive file=...,format=raw|qcow2",
        "cdrom": "an image of a format QEMU guesses from its content; use -drive file=...,media=cdrom,format=raw",
        "pflash": "an image of a format QEMU guesses from its content; use -drive if=pflash,format=raw,file=...",
        "k": "looks its keymap up as a file path first",
        "spice": "reads TLS certificates and SASL configuration ukey does not measure",
        "plugin": "loads a plugin library into QEMU",
        "loadvm": "starts the guest from a saved state ukey cannot measure",
        "incoming": "starts the guest from a migration stream ukey cannot measure",
        "chroot": "changes the root QEMU resolves paths against",
        "add-fd": "hands QEMU descriptors of files ukey did not open",
        "gdb": "opens a debugger stub that can change the guest at will",
        "s": "opens a debugger stub on tcp::1234 that can change the guest at will",
        "qtest": "hands control of the guest to a test protocol",
        "qtest-log": "belongs to the qtest protocol",
        "preconfig": "lets a QMP client configure the machine before it is created",
        "dump-vmstate": "is a developer option",
        "xen-domid": "is for Xen, which this QEMU does not run",
        "xen-attach": "is for Xen, which this QEMU does not run",
        "xen-domid-restrict": "is for Xen, which this QEMU does not run",
        "g": "is not an x86 option", "prom-env": "is not an x86 option", "semihosting": "is not an x86 option",
        "semihosting-config": "is not an x86 option", "old-param": "is not an x86 option",
    ]
}

//! The x86-64 build targets x86-64-v3 (`.cargo/config.toml`): AVX, AVX2, FMA, BMI1/2, F16C,
//! LZCNT and MOVBE. On a CPU without them the binary would die of SIGILL somewhere in the
//! first call's DSP; this check turns that into a message at start-up that says how to
//! rebuild.
//!
//! `is_x86_feature_detected!` cannot be used: in a build that enables a feature it is a
//! compile-time `true`. So the CPU is asked directly (CPUID, and XGETBV for whether the
//! operating system saves the AVX registers).

/// Features a CPU lacks for this build (empty: fine, or not an x86-64-v3 build).
pub fn missing_features() -> Vec<&'static str> {
    #[cfg(all(target_arch = "x86_64", target_feature = "avx2"))]
    {
        use std::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
        let leaf1 = __cpuid(1);
        let leaf7 = __cpuid_count(7, 0);
        let extended = __cpuid(0x8000_0001);
        let os_saves_xmm_ymm = leaf1.ecx & (1 << 27) != 0 && {
            // SAFETY: OSXSAVE (CPUID.1:ECX bit 27) is set, so XGETBV exists and CR4.OSXSAVE
            // is on; register 0 (XCR0) is always readable then.
            let xcr0 = unsafe { _xgetbv(0) };
            xcr0 & 0b110 == 0b110
        };
        missing(
            CpuidBits {
                leaf1_ecx: leaf1.ecx,
                leaf7_ebx: leaf7.ebx,
                extended_ecx: extended.ecx,
            },
            os_saves_xmm_ymm,
        )
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "avx2")))]
    {
        Vec::new()
    }
}

/// The message the gateway exits with, or `None` on a capable CPU.
pub fn unsupported_cpu_message() -> Option<String> {
    let missing = missing_features();
    (!missing.is_empty()).then(|| {
        format!(
            "this CPU lacks {} which this build uses (it targets x86-64-v3, see \
             .cargo/config.toml); rebuild for a baseline x86-64 CPU with: \
             RUSTFLAGS=\"-C target-cpu=x86-64\" cargo build --release -p bargein-gateway",
            missing.join(", ")
        )
    })
}

/// The CPUID registers the x86-64-v3 features live in.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "avx2")),
    allow(dead_code)
)]
struct CpuidBits {
    leaf1_ecx: u32,
    leaf7_ebx: u32,
    extended_ecx: u32,
}

/// (name, register, bit) of each x86-64-v3 feature.
const FEATURES: [(&str, Register, u32); 8] = [
    ("FMA", Register::Leaf1Ecx, 12),
    ("MOVBE", Register::Leaf1Ecx, 22),
    ("AVX", Register::Leaf1Ecx, 28),
    ("F16C", Register::Leaf1Ecx, 29),
    ("BMI1", Register::Leaf7Ebx, 3),
    ("AVX2", Register::Leaf7Ebx, 5),
    ("BMI2", Register::Leaf7Ebx, 8),
    ("LZCNT", Register::ExtendedEcx, 5),
];

#[derive(Clone, Copy, Debug)]
enum Register {
    Leaf1Ecx,
    Leaf7Ebx,
    ExtendedEcx,
}

#[cfg_attr(
    not(all(target_arch = "x86_64", target_feature = "avx2")),
    allow(dead_code)
)]
fn missing(bits: CpuidBits, os_saves_xmm_ymm: bool) -> Vec<&'static str> {
    let mut missing: Vec<&'static str> = FEATURES
        .iter()
        .filter(|(_, register, bit)| {
            let value = match register {
                Register::Leaf1Ecx => bits.leaf1_ecx,
                Register::Leaf7Ebx => bits.leaf7_ebx,
                Register::ExtendedEcx => bits.extended_ecx,
            };
            value & (1 << bit) == 0
        })
        .map(|(name, _, _)| *name)
        .collect();
    if !os_saves_xmm_ymm {
        missing.push("operating-system support for AVX registers (XSAVE)");
    }
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Haswell-class CPU: every x86-64-v3 bit set.
    const CAPABLE: CpuidBits = CpuidBits {
        leaf1_ecx: (1 << 12) | (1 << 22) | (1 << 27) | (1 << 28) | (1 << 29),
        leaf7_ebx: (1 << 3) | (1 << 5) | (1 << 8),
        extended_ecx: 1 << 5,
    };

    #[test]
    fn a_capable_cpu_lacks_nothing() {
        assert!(missing(CAPABLE, true).is_empty());
    }

    #[test]
    fn a_cpu_without_avx2_and_fma_is_named_precisely() {
        let sandy_bridge = CpuidBits {
            leaf1_ecx: CAPABLE.leaf1_ecx & !(1 << 12),
            leaf7_ebx: 0,
            extended_ecx: CAPABLE.extended_ecx,
        };
        assert_eq!(missing(sandy_bridge, true), ["FMA", "BMI1", "AVX2", "BMI2"]);
    }

    #[test]
    fn avx_registers_the_os_does_not_save_count_as_missing() {
        assert_eq!(
            missing(CAPABLE, false),
            ["operating-system support for AVX registers (XSAVE)"]
        );
    }

    #[test]
    fn the_machine_running_the_tests_is_capable_of_its_own_build() {
        // The tests were built with this build's flags and are running: the check must agree.
        assert_eq!(unsupported_cpu_message(), None);
    }
}

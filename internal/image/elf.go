package image

import (
	"debug/elf"
	"fmt"
)

// BinaryPlatform returns the GOOS and GOARCH of a static Linux ELF binary, and an error when
// the file is not one: an image without a base has no dynamic loader and no libc.
func BinaryPlatform(path string) (goos, goarch string, err error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("%s is not an ELF binary: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", "", fmt.Errorf("%s is dynamically linked: build it with CGO_ENABLED=0", path)
		}
	}
	arch, ok := map[elf.Machine]string{
		elf.EM_X86_64:  "amd64",
		elf.EM_AARCH64: "arm64",
		elf.EM_386:     "386",
		elf.EM_ARM:     "arm",
		elf.EM_PPC64:   "ppc64le",
		elf.EM_S390:    "s390x",
		elf.EM_RISCV:   "riscv64",
	}[f.Machine]
	if !ok {
		return "", "", fmt.Errorf("%s is built for %s, which the image builder does not know", path, f.Machine)
	}
	return "linux", arch, nil
}

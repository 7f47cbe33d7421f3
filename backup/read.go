package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/kura-db/kura/backup/storage"
	"github.com/kura-db/kura/internal/seed"
)

// ReadManifest reads a backup's manifest; a backup without one does not exist
// (storage.ErrNotFound).
func ReadManifest(ctx context.Context, st storage.Storage, l Layout, name string) (Manifest, error) {
	r, err := st.Get(ctx, l.ManifestKey(name))
	if err != nil {
		return Manifest{}, err
	}
	defer func() { _ = r.Close() }()
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return Manifest{}, fmt.Errorf("failed to read the manifest of %s: %w", name, err)
	}
	return DecodeManifest(b)
}

// Verify reads every object of a backup back and checks its size and SHA-256 against the
// manifest.
func Verify(ctx context.Context, st storage.Storage, l Layout, name string) (Manifest, error) {
	m, err := ReadManifest(ctx, st, l, name)
	if err != nil {
		return m, err
	}
	for _, o := range m.Objects {
		r, err := st.Get(ctx, l.BackupPrefix(name)+o.Name)
		if err != nil {
			return m, err
		}
		h := sha256.New()
		n, err := io.Copy(h, r)
		_ = r.Close()
		if err != nil {
			return m, fmt.Errorf("failed to read %s: %w", o.Name, err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); n != o.Size || got != o.SHA256 {
			return m, fmt.Errorf("failed to verify %s: %d bytes with SHA-256 %s, the manifest says %d bytes with %s", st.Location(l.BackupPrefix(name)+o.Name), n, got, o.Size, o.SHA256)
		}
	}
	return m, nil
}

// StoredCopy is a stored physical backup as the source of a copy (seed.Source): restoring
// it is a clone from storage.
type StoredCopy struct {
	Storage storage.Storage
	Layout  Layout
	Backup  string
}

// Name implements seed.Source.
func (s StoredCopy) Name() string { return s.Storage.Location(s.Layout.BackupPrefix(s.Backup)) }

// Open implements seed.Source: the manifest must exist (a backup without it does not).
func (s StoredCopy) Open(ctx context.Context) (*seed.Reader, io.Closer, error) {
	m, err := ReadManifest(ctx, s.Storage, s.Layout, s.Backup)
	if err != nil {
		return nil, nil, err
	}
	if len(m.Objects) != 1 || m.Method != "physical" {
		return nil, nil, fmt.Errorf("failed to open %s: not a physical backup", s.Name())
	}
	r, err := s.Storage.Get(ctx, s.Layout.BackupPrefix(s.Backup)+m.Objects[0].Name)
	if err != nil {
		return nil, nil, err
	}
	d, err := Decompress(m.Compression, r)
	if err != nil {
		_ = r.Close()
		return nil, nil, err
	}
	sr, err := seed.NewReader(d)
	if err != nil {
		_ = d.Close()
		_ = r.Close()
		return nil, nil, err
	}
	return sr, closers{d, r}, nil
}

type closers []io.Closer

func (c closers) Close() error {
	for _, x := range c {
		_ = x.Close()
	}
	return nil
}

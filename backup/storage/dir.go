package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// Dir stores objects as files under Root (a mounted PersistentVolumeClaim).
type Dir struct {
	Root string
	// Claim names the volume in locations (pvc://<claim>/<key>); SubPath is the directory
	// inside it that Root is mounted from.
	Claim, SubPath string
}

// partialSuffix marks files being written; List never returns them.
const partialSuffix = ".partial"

func (d *Dir) path(key string) (string, error) {
	clean := path.Clean("/" + key)[1:]
	if clean == "" || clean != key || strings.HasSuffix(key, partialSuffix) {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	return filepath.Join(d.Root, filepath.FromSlash(clean)), nil
}

// temp writes r to a new temporary file next to p and syncs it.
func (d *Dir) temp(p string, r io.Reader) (string, int64, error) {
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		return "", 0, fmt.Errorf("failed to create %s: %w", filepath.Dir(p), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	tmp := p + "." + hex.EncodeToString(b[:]) + partialSuffix
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return "", 0, fmt.Errorf("failed to create %s: %w", tmp, err)
	}
	n, err := io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", n, fmt.Errorf("failed to write %s: %w", p, err)
	}
	return tmp, n, nil
}

// Put implements Storage.
func (d *Dir) Put(_ context.Context, key string, r io.Reader, _ int64) (Info, error) {
	p, err := d.path(key)
	if err != nil {
		return Info{}, err
	}
	tmp, n, err := d.temp(p, r)
	if err != nil {
		return Info{}, err
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return Info{}, fmt.Errorf("failed to move %s into place: %w", p, err)
	}
	if err := syncDir(filepath.Dir(p)); err != nil {
		return Info{}, err
	}
	fi, err := os.Stat(p)
	if err != nil {
		return Info{}, fmt.Errorf("failed to stat %s: %w", p, err)
	}
	return Info{Key: key, Size: n, Modified: fi.ModTime()}, nil
}

// Create implements Storage: a hard link fails when the name exists, so exactly one
// creator wins.
func (d *Dir) Create(_ context.Context, key string, data []byte) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	tmp, _, err := d.temp(p, strings.NewReader(string(data)))
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp) }()
	if err := os.Link(tmp, p); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("failed to create %s: %w", key, ErrExists)
		}
		return fmt.Errorf("failed to create %s: %w", key, err)
	}
	return syncDir(filepath.Dir(p))
}

// Get implements Storage.
func (d *Dir) Get(_ context.Context, key string) (io.ReadCloser, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("failed to open %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("failed to open %s: %w", key, err)
	}
	return f, nil
}

// List implements Storage.
func (d *Dir) List(_ context.Context, prefix string) ([]Info, error) {
	var out []Info
	err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasSuffix(p, partialSuffix) {
			return nil
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		out = append(out, Info{Key: key, Size: fi.Size(), Modified: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to list %s: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete implements Storage; directories left empty are removed up to Root.
func (d *Dir) Delete(_ context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to delete %s: %w", key, err)
	}
	for dir := filepath.Dir(p); dir != d.Root && strings.HasPrefix(dir, d.Root); dir = filepath.Dir(dir) {
		if os.Remove(dir) != nil {
			break
		}
	}
	return syncDir(filepath.Dir(p))
}

// DeleteIncomplete implements Storage: it removes the temporary files under prefix.
func (d *Dir) DeleteIncomplete(_ context.Context, prefix string) (int, error) {
	n := 0
	err := filepath.WalkDir(d.Root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(d.Root, p)
		if err != nil || e.IsDir() || !strings.HasSuffix(p, partialSuffix) || !strings.HasPrefix(filepath.ToSlash(rel), prefix) {
			return err
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("failed to remove the unfinished files under %s: %w", prefix, err)
	}
	return n, nil
}

// Location implements Storage.
func (d *Dir) Location(key string) string {
	return "pvc://" + path.Join(d.Claim, d.SubPath, key)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to sync %s: %w", dir, err)
	}
	defer func() { _ = f.Close() }()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("failed to sync %s: %w", dir, err)
	}
	return nil
}

// Package storage keeps backup objects behind one small interface (docs/backup.md), with an
// S3 implementation (minio-go) and a directory implementation for a PersistentVolumeClaim.
// Keys are slash-separated paths relative to the storage's root. An object is visible only
// once it is complete: S3 completes a multipart upload atomically; a directory writes a
// temporary file, syncs it and renames it into place.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// Errors the implementations return (wrapped).
var (
	ErrNotFound = errors.New("object not found")
	ErrExists   = errors.New("object already exists")
)

// Info describes a stored object.
type Info struct {
	Key      string
	Size     int64
	Modified time.Time
}

// Storage is where backups live.
type Storage interface {
	// Put stores r under key; size is -1 when unknown. Memory stays bounded whatever the
	// size. The object is visible only when Put returns without error.
	Put(ctx context.Context, key string, r io.Reader, size int64) (Info, error)
	// Create stores data under key only if nothing is there yet (ErrExists otherwise).
	Create(ctx context.Context, key string, data []byte) error
	// Get opens an object (ErrNotFound when missing).
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// List returns the objects whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Info, error)
	// Delete removes an object; a missing one is not an error.
	Delete(ctx context.Context, key string) error
	// Location is the URL of key for people: s3://bucket/prefix/key or pvc://claim/path/key.
	Location(key string) string
	// DeleteIncomplete removes what unfinished writes under prefix left (S3 multipart
	// uploads never completed or aborted, a directory's temporary files): what a killed
	// writer leaves behind. It returns how many it removed.
	DeleteIncomplete(ctx context.Context, prefix string) (int, error)
}

// DeletePrefix deletes every object under prefix, and what unfinished writes left there.
func DeletePrefix(ctx context.Context, s Storage, prefix string) (int, error) {
	objs, err := s.List(ctx, prefix)
	if err != nil {
		return 0, err
	}
	for i, o := range objs {
		if err := s.Delete(ctx, o.Key); err != nil {
			return i, err
		}
	}
	n, err := s.DeleteIncomplete(ctx, prefix)
	return len(objs) + n, err
}

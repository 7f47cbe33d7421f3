package agent

import (
	"context"
	"io"

	"github.com/kura-db/kura/internal/seed"
)

// CloningMarker is on the data volume while a clone is being written into it: a directory
// that carries it holds a partial copy, which the next `kura init` throws away.
const CloningMarker = seed.CloningMarker

// cloningState is the cloning marker's content.
type cloningState = seed.CloningState

// CloneOptions tune CloneInto (seed.Options: engine, server option file, admin password,
// tools, private server, stall timeout, log).
type CloneOptions = seed.Options

// CloneResult describes a finished clone.
type CloneResult = seed.Result

// donorSource is a donor's agent as a source of a physical copy.
type donorSource struct {
	name   string
	client *Client
}

func (d donorSource) Name() string { return d.name }

func (d donorSource) Open(ctx context.Context) (*seed.Reader, io.Closer, error) {
	s, err := d.client.Clone(ctx)
	if err != nil {
		return nil, nil, err
	}
	return s.Reader, s, nil
}

// CloneInto copies the donor's data into datadir through its agent (seed.Into): on success
// the directory is prepared, has the donor's GTID state at the copy point and is marked
// initialised; on failure it carries the cloning marker, so the next attempt starts over.
func CloneInto(ctx context.Context, donor *Client, donorName, datadir string, opts CloneOptions) (CloneResult, error) {
	return seed.Into(ctx, donorSource{name: donorName, client: donor}, datadir, opts)
}

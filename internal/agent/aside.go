package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kura-db/kura/internal/contract"
	"github.com/kura-db/kura/internal/engine"
)

// AsideDir is where the data an instance had before a re-clone is kept, on the same volume
// (a rename, no copy): kura-aside/<UTC time>/. Only the newest copy is kept.
const AsideDir = contract.AsideDir

// keptEntries are never moved aside or cleared: the aside copies, the file system's
// lost+found and the markers that say what is going on.
var keptEntries = map[string]bool{AsideDir: true, contract.LegacyAsideDir: true, "lost+found": true, RecloneMarker: true, CloningMarker: true}

// migrateAside renames the aside directory of an earlier version (contract.LegacyAsideDir),
// whose name stopped every physical copy of the instance, to AsideDir; copies already in
// AsideDir win over legacy ones of the same name.
func migrateAside(dir string, log io.Writer) error {
	legacy := filepath.Join(dir, contract.LegacyAsideDir)
	entries, err := os.ReadDir(legacy)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", legacy, err)
	}
	root := filepath.Join(dir, AsideDir)
	if err := os.MkdirAll(root, 0o750); err != nil {
		return fmt.Errorf("failed to create %s: %w", root, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue // db.opt the server wrote, taking the directory for a database
		}
		if _, err := os.Stat(filepath.Join(root, e.Name())); err == nil {
			continue
		}
		if err := os.Rename(filepath.Join(legacy, e.Name()), filepath.Join(root, e.Name())); err != nil {
			return fmt.Errorf("failed to move %s to %s: %w", e.Name(), root, err)
		}
	}
	if err := os.RemoveAll(legacy); err != nil {
		return fmt.Errorf("failed to remove %s: %w", legacy, err)
	}
	_, _ = fmt.Fprintf(log, "kura init: moved the aside copies from %s to %s\n", legacy, root)
	return syncDir(dir)
}

// moveAside renames everything in dir into a new aside directory, then removes older aside
// copies. A directory with nothing to move leaves the existing aside copy alone.
func moveAside(dir string, now time.Time, log io.Writer) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", dir, err)
	}
	var move []string
	for _, e := range entries {
		if !keptEntries[e.Name()] {
			move = append(move, e.Name())
		}
	}
	if len(move) == 0 {
		return nil
	}
	root := filepath.Join(dir, AsideDir)
	name := now.UTC().Format("20060102T150405Z")
	dest := filepath.Join(root, name)
	if err := os.MkdirAll(dest, 0o750); err != nil {
		return fmt.Errorf("failed to create %s: %w", dest, err)
	}
	for _, m := range move {
		if err := os.Rename(filepath.Join(dir, m), filepath.Join(dest, m)); err != nil {
			return fmt.Errorf("failed to move %s aside: %w", m, err)
		}
	}
	if err := syncDir(dest); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	_, _ = fmt.Fprintf(log, "kura init: kept the previous data (%d entries) in %s\n", len(move), dest)
	old, err := os.ReadDir(root)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", root, err)
	}
	for _, o := range old {
		if o.Name() == name {
			continue
		}
		if err := os.RemoveAll(filepath.Join(root, o.Name())); err != nil {
			return fmt.Errorf("failed to remove the older aside copy %s: %w", o.Name(), err)
		}
		_, _ = fmt.Fprintf(log, "kura init: removed the older aside copy %s\n", o.Name())
	}
	return nil
}

// clearData removes a partial copy: everything but the kept entries.
func clearData(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("failed to read %s: %w", dir, err)
	}
	for _, e := range entries {
		if keptEntries[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("failed to remove the partial copy's %s: %w", e.Name(), err)
		}
	}
	return syncDir(dir)
}

// cloneMySQL (experimental, never run against a server here) initialises an empty data
// directory, starts it privately and pulls the donor's data with CLONE INSTANCE; the server
// stops by itself afterwards (no supervisor restarts it) and the copy carries the donor's
// gtid_executed.
func cloneMySQL(ctx context.Context, e Env, dir string, donor Peer, opts InitOptions) (Outcome, error) {
	accounts := engine.StandardAccounts(e.Credentials())
	// mysqld --initialize needs an empty directory: the cloning marker is set aside meanwhile.
	if err := removeMarker(dir, CloningMarker); err != nil {
		return "", err
	}
	if _, err := engine.InitDataDir(ctx, e.Engine, dir, accounts, opts.Engine); err != nil {
		return "", err
	}
	if err := writeMarker(dir, CloningMarker, cloningState{Donor: donor.Name, Started: time.Now().UTC()}); err != nil {
		return "", err
	}
	if err := os.Remove(filepath.Join(dir, engine.InitMarker)); err != nil {
		return "", fmt.Errorf("failed to remove %s: %w", engine.InitMarker, err)
	}
	tmp, err := os.MkdirTemp("", "kura-clone-")
	if err != nil {
		return "", fmt.Errorf("failed to create a private directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	so := opts.Clone.Server
	so.Engine, so.DefaultsFile, so.DataDir, so.Dir = e.Engine, opts.DefaultsFile, dir, tmp
	so.User, so.Password = engine.OperatorUser, e.OperatorPassword
	srv, err := engine.StartPrivateServer(ctx, so)
	if err != nil {
		return "", err
	}
	inst, err := srv.Open()
	if err != nil {
		return "", errors.Join(err, srv.Shutdown(ctx))
	}
	defer func() { _ = inst.Close() }()
	ep := engine.Endpoint{Host: donor.Host, Port: 3306, User: engine.AgentUser, Password: e.AgentPassword}
	if err := engine.CloneFrom(ctx, inst, ep); err != nil {
		return "", errors.Join(err, srv.Shutdown(ctx))
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := srv.Wait(wctx); err != nil {
		if serr := srv.Shutdown(ctx); serr != nil {
			return "", errors.Join(err, serr)
		}
	}
	if err := writeMarker(dir, engine.InitMarker, map[string]string{"clonedFrom": donor.Name}); err != nil {
		return "", err
	}
	if err := removeMarker(dir, CloningMarker); err != nil {
		return "", err
	}
	return Cloned, nil
}

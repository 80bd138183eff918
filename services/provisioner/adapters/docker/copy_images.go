package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
)

// CopyImages makes the images refs (names, name:tag or ids) present on the
// engine to by copying them from the engine from, and returns those it
// copied; refs to already has are left alone. The images go in one stream
// from from's image save to to's image load (layers they share go once),
// through memory only: no registry and no temporary file. Each copied image
// is looked up on to afterwards. A ref that from does not have is an error
// that names it, before anything is copied.
func CopyImages(ctx context.Context, from, to *client.Client, refs []string) (copied []string, err error) {
	var missing []string
	seen := map[string]bool{}
	for _, ref := range refs {
		if seen[ref] {
			continue
		}
		seen[ref] = true
		_, err := to.ImageInspect(ctx, ref)
		if err == nil {
			continue
		}
		if !cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("looking up image %s on the target engine: %w", ref, err)
		}
		if _, err := from.ImageInspect(ctx, ref); err != nil {
			if cerrdefs.IsNotFound(err) {
				return nil, fmt.Errorf("copying image %s: the source engine does not have it: %w", ref, err)
			}
			return nil, fmt.Errorf("looking up image %s on the source engine: %w", ref, err)
		}
		missing = append(missing, ref)
	}
	if len(missing) == 0 {
		return nil, nil
	}

	copyCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	saved := make(chan error, 1)
	go func() {
		err := func() error {
			rc, err := from.ImageSave(copyCtx, missing)
			if err != nil {
				return fmt.Errorf("saving images %v on the source engine: %w", missing, err)
			}
			defer rc.Close()
			if _, err := io.Copy(pw, rc); err != nil {
				return fmt.Errorf("streaming images %v: %w", missing, err)
			}
			return nil
		}()
		pw.CloseWithError(err) // nil: EOF for the load
		saved <- err
	}()
	loadErr := load(copyCtx, to, pr)
	// A load that failed early stops reading: end the save as well.
	pr.CloseWithError(errors.New("the image load ended"))
	cancel()
	saveErr := <-saved
	if loadErr != nil {
		// The save's error, when it has one, is why the load failed.
		if saveErr != nil && ctx.Err() == nil {
			return nil, saveErr
		}
		return nil, loadErr
	}
	for _, ref := range missing {
		if _, err := to.ImageInspect(ctx, ref); err != nil {
			return nil, fmt.Errorf("image %s was loaded into the target engine but is not there: %w", ref, err)
		}
	}
	return missing, nil
}

// load feeds the archive r to to's image load and reads the load's
// progress to its end: the engine reports a failure there, with the
// response status already 200.
func load(ctx context.Context, to *client.Client, r io.Reader) error {
	res, err := to.ImageLoad(ctx, r, client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("loading images into the target engine: %w", err)
	}
	defer res.Close()
	dec := json.NewDecoder(res)
	for {
		var m struct {
			jsonstream.Message
			ErrorText string `json:"error,omitempty"` // engines before API 1.4x
		}
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("reading the image load's progress: %w", err)
		}
		if m.Error != nil && m.Error.Message != "" {
			return fmt.Errorf("loading images into the target engine: %s", m.Error.Message)
		}
		if m.ErrorText != "" {
			return fmt.Errorf("loading images into the target engine: %s", m.ErrorText)
		}
	}
}

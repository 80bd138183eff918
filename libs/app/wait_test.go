package app_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/greenroom-dev/greenroom/libs/app"
	"github.com/greenroom-dev/greenroom/libs/startstop"
)

func started(t *testing.T, s startstop.Service) startstop.Service {
	t.Helper()
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func idle() startstop.Service {
	return startstop.Func(func(ctx context.Context) error { <-ctx.Done(); return nil })
}

func waitReturns(t *testing.T, wait func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Wait did not return")
		return nil
	}
}

func TestWaitStopsServiceAndServerWhenTheSignalComes(t *testing.T) {
	svc, srv := started(t, idle()), started(t, idle())
	ctx, signal := context.WithCancel(context.Background())
	signal()
	if err := waitReturns(t, func() error { return app.Wait(ctx, time.Minute, svc, srv) }); err != nil {
		t.Fatalf("Wait = %v, want a clean stop", err)
	}
	for _, s := range []startstop.Service{svc, srv} {
		select {
		case <-s.Stopped():
		default:
			t.Fatal("Wait returned with a part still running")
		}
	}
}

func TestWaitReturnsWhenTheServiceFailsAndStopsTheServer(t *testing.T) {
	boom := errors.New("consumer deleted")
	failed := make(chan struct{})
	svc := started(t, startstop.Func(func(ctx context.Context) error { <-failed; return boom }))
	srv := started(t, idle())
	close(failed)
	err := waitReturns(t, func() error { return app.Wait(context.Background(), time.Minute, svc, srv) })
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "the service stopped on its own") {
		t.Fatalf("Wait = %v, want the service's failure", err)
	}
	<-srv.Stopped()
}

func TestWaitGivesUpOnAServiceStuckPastTheShutdownTimeout(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	svc := started(t, startstop.Func(func(context.Context) error { <-never; return nil }))
	srv := started(t, idle())
	ctx, signal := context.WithCancel(context.Background())
	signal()
	err := waitReturns(t, func() error { return app.Wait(ctx, 50*time.Millisecond, svc, srv) })
	if !errors.Is(err, startstop.ErrShutdownTimeout) || !strings.Contains(err.Error(), "service") || strings.Contains(err.Error(), "http server") {
		t.Fatalf("Wait = %v, want ErrShutdownTimeout naming the service only", err)
	}
}

// The service and the server run on the signal's context, so they may have
// stopped by themselves before Wait sees the signal: still a clean stop.
func TestWaitIsACleanStopWhenThePartsStoppedAtTheSignalFirst(t *testing.T) {
	ctx, signal := context.WithCancel(context.Background())
	svc, srv := idle(), idle()
	for _, s := range []startstop.Service{svc, srv} {
		if err := s.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	signal()
	<-svc.Stopped()
	<-srv.Stopped()
	if err := waitReturns(t, func() error { return app.Wait(ctx, time.Minute, svc, srv) }); err != nil {
		t.Fatalf("Wait = %v, want a clean stop", err)
	}
}

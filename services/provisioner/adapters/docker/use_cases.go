package docker

import (
	"github.com/greenroom-dev/greenroom/services/provisioner/app/audit"
	"github.com/greenroom-dev/greenroom/services/provisioner/app/command"
)

// The use cases each declare the Docker calls they make (command.Engine,
// audit.Engine); an Engine makes them all.
var (
	_ command.Engine = (*Engine)(nil)
	_ audit.Engine   = (*Engine)(nil)
)

// AsCommandEngines hands the engines out as app/command's Engine.
func (e *Engines) AsCommandEngines() command.Engines { return commandEngines{e} }

// AsAuditEngines hands the engines out as app/audit's Engine.
func (e *Engines) AsAuditEngines() audit.Engines { return auditEngines{e} }

type commandEngines struct{ engines *Engines }

func (c commandEngines) For(endpoint string) (command.Engine, error) {
	eng, err := c.engines.For(endpoint)
	if err != nil {
		return nil, err // a nil interface, not one holding a nil *Engine
	}
	return eng, nil
}

type auditEngines struct{ engines *Engines }

func (a auditEngines) For(endpoint string) (audit.Engine, error) {
	eng, err := a.engines.For(endpoint)
	if err != nil {
		return nil, err
	}
	return eng, nil
}

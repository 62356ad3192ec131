import { initialState, type MachineInput, type MachineState, step } from '../../firmware/state/machine.js';

/** The state after these inputs, one `step` each (as the box's reconciler feeds them). */
export function after(inputs: readonly MachineInput[], from: MachineState = initialState()): MachineState {
  return inputs.reduce(step, from);
}

/**
 * What `./dev up` runs on top of the infrastructure: the pipeline's stages and the demo.
 * The stages do not exist yet; this is the one place to start them once they do.
 */
export interface RunningStage {
  name: string;
  /** Asks the stage to stop and resolves once it has exited. */
  stop(): Promise<void>;
}

export async function startStages(): Promise<RunningStage[]> {
  return [];
}

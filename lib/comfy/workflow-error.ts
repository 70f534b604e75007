// The error a workflow file earns when it cannot be used: the file's name first, then why.
export class WorkflowReadError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

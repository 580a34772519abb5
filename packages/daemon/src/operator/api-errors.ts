/**
 * The admin API's coded error as thrown by route handlers; server.ts turns it into `{code, message}` with
 * the code's HTTP status. The catalogue of codes is in @gwcluster/contracts (api-errors.ts).
 */
import { API_ERRORS, type ApiErrorCode } from '@gwcluster/contracts';

export { API_ERRORS, ErrorSchema, isApiErrorCode, type ApiErrorCode, type ApiErrorBody } from '@gwcluster/contracts';

export class ApiError extends Error {
  readonly statusCode: number;
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
    this.statusCode = API_ERRORS[code];
  }
}

export { VERSION } from '../index.js';
